"""Spatial augmentation with frozen towers: no augmentation, K cached augmented views, augmentation
from video every epoch. UAR / WAR mean +- std over seeds, and seconds per epoch, on the shipped synthetic set.

The set's own protocol is used ('tsn': random resized crop of 60-100% of the area, flip 0.5, colour jitter 0.2).
Tiny CLIP (`a3lign-tiny-rn` with its shipped `synthetic` image tower) and the demo's model and epochs, so the
whole comparison is a few minutes of CPU.

    python benchmarks/bench_augment.py                           # 3 seeds, the demo's 3+2+3 epochs
    python benchmarks/bench_augment.py --seeds 0 1 --views 4 --out /tmp/aug.json
"""
import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def run(variant: str, seed: int, args, tmp: Path) -> dict:
    from a3lign_nb.pipelines import DEMO_BACKBONE, DEMO_MODEL
    from a3lign_nb.models.a3lign import A3lignConfig
    from a3lign_nb import pipelines
    from a3lign_nb.train.config import TrainConfig
    from a3lign_nb.utils import REPO_SAMPLES
    data = Path(args.data) if args.data else REPO_SAMPLES/'synthetic'
    kw = dict(none=dict(use_cache=True, views=1), views=dict(use_cache=True, views=args.views),
              video=dict(use_cache=False, views=1, augment=True))[variant]
    out = tmp/f'{variant}_{seed}'
    cfg = TrainConfig(dataset='synthetic', train_list=str(data/'train.txt'), test_list=str(data/'test.txt'),
                           pretrained=DEMO_BACKBONE[1], text_epochs=args.epochs[0],
                           image_epochs=args.epochs[1], joint_epochs=args.epochs[2], batch_size=32, device='cpu', seed=seed,
                           out_dir=str(out), cache_dir=str(tmp/f'cache_{variant}_{seed}'), overwrite=True, progress=False,
                           eval_every=0, model=A3lignConfig(backbone=DEMO_BACKBONE[0], **DEMO_MODEL), **kw)
    t0 = time.time()
    rep = pipelines.train(cfg)
    total = time.time() - t0
    rows = [json.loads(l) for l in open(out/'log.jsonl')]
    return dict(variant=variant, seed=seed, uar=rep['uar'], war=rep['war'], epoch_s=float(np.mean([r['epoch_s'] for r in rows])),
                total_s=round(total, 1))


def table(results: list[dict], views: int) -> str:
    names = dict(none='cache, 1 view (no spatial augmentation)', views=f'cache, {views} views (1 plain + {views - 1} augmented)',
                 video='from video, augmented every epoch')
    lines = ['| training frames | UAR % (mean +- std) | WAR % (mean +- std) | s / epoch | s / run (incl. extraction) |',
             '|---|---|---|---|---|']
    for v in ('none', 'views', 'video'):
        rs = [r for r in results if r['variant'] == v]
        if not rs: continue
        u, w = np.array([r['uar'] for r in rs]) * 100, np.array([r['war'] for r in rs]) * 100
        sd = lambda a: a.std(ddof=1) if len(a) > 1 else 0.0
        lines.append(f'| {names[v]} | {u.mean():.1f} +- {sd(u):.1f} | {w.mean():.1f} +- {sd(w):.1f} | '
                     f"{np.mean([r['epoch_s'] for r in rs]):.2f} | {np.mean([r['total_s'] for r in rs]):.1f} |")
    return '\n'.join(lines) + f'\n\n({len(results) // 3 if len(results) >= 3 else len(results)} seeds per row)'


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--views', type=int, default=4, help='K, cached views per clip')
    p.add_argument('--epochs', type=int, nargs=3, default=[3, 2, 3], help='BAP text, image, joint epochs (the demo\'s)')
    p.add_argument('--variants', nargs='+', default=['none', 'views', 'video'])
    p.add_argument('--data', default=None, help='a synthetic set folder (default: data_samples/synthetic)')
    p.add_argument('--out', default=None, help='write the results as JSON here')
    args = p.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as d:
        for seed in args.seeds:
            for v in args.variants:
                results.append(run(v, seed, args, Path(d)))
                print(json.dumps(results[-1]), flush=True)
    print(table(results, args.views))
    if args.out: Path(args.out).write_text(json.dumps(results, indent=1))
