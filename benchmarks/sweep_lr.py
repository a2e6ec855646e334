"""Learning-rate / clipping sweep for BAP under SGD on a shipped synthetic set (tiny CLIP, CPU).

    python benchmarks/sweep_lr.py --set synthetic-time --seeds 0 --out benchmarks/results/sweep_synthetic-time.json

Each row: one (lr, mat_lr_mult, grad_clip, seed) run (rows already in OUT are kept); test UAR/WAR at the end of each BAP stage and the
mean gradient norm per role. The BAP lesson (nbs/41_train.bap.ipynb) reads the JSON this writes."""
import argparse, itertools, time

import numpy as np
import torch

from a3lign_nb.train.cache import load_feature_set, SHIPPED_SETS
from a3lign_nb.eval.metrics import uar, war
from a3lign_nb.models.a3lign import A3lignDFER
from a3lign_nb.train.bap import BAPSchedule, OptimConfig, train_bap
from a3lign_nb.utils import atomic_save_json, load_json
from pathlib import Path

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument('--set', default='synthetic-time', choices=sorted(SHIPPED_SETS))
p.add_argument('--seeds', type=int, nargs='+', default=[0])
p.add_argument('--lr', type=float, nargs='+', default=[2e-3, 1e-2])
p.add_argument('--mat-lr-mult', type=float, nargs='+', default=[1.0, 0.1])
p.add_argument('--grad-clip', type=float, nargs='+', default=[0.0, 1.0], help='0: no clipping')
p.add_argument('--epochs', type=int, nargs=3, default=[40, 30, 30])
p.add_argument('--out', required=True)
a = p.parse_args()
torch.set_num_threads(1)
fs = load_feature_set(a.set)
key = lambda r: (r['lr'], r['mat_lr_mult'], r['grad_clip'], r['seed'])
rows = []
if Path(a.out).exists():  # runs of other seeds/settings already there are kept (same key: replaced)
    rows = [r for r in load_json(a.out)['rows']]
for lr, mm, gc, seed in itertools.product(a.lr, a.mat_lr_mult, a.grad_clip, a.seeds):
    t0 = time.time()
    model = A3lignDFER(fs.model_config(seed=seed), fs.backbone)
    log = train_bap(model, fs.train_feats, fs.train_labels, BAPSchedule(*a.epochs), seed=seed,
                    eval_feats=fs.test_feats, eval_labels=fs.test_labels,
                    optim=OptimConfig(lr=lr, mat_lr_mult=mm, grad_clip=gc or None))
    ends = {r['stage']: r for r in log}
    row = dict(lr=lr, mat_lr_mult=mm, grad_clip=gc or None, seed=seed, seconds=round(time.time() - t0, 1),
               **{f'acc_after_{s}': ends[s]['eval_acc'] for s in ends},
               **{f'shuffled_after_{s}': ends[s]['eval_acc_shuffled'] for s in ends},
               **{k: round(float(np.mean([r[k] for r in log if k in r])), 4) for k in log[-1] if k.startswith('gnorm_')})
    model.eval()
    with torch.no_grad(): pred = model(fs.test_feats).argmax(1).numpy()
    y = fs.test_labels.numpy()
    row.update(uar=uar(y, pred, len(fs.classes)), war=war(y, pred))
    rows = [r for r in rows if key(r) != key(row)] + [row]; print(row, flush=True)
    atomic_save_json(dict(set=a.set, epochs=a.epochs, rows=rows), a.out)
