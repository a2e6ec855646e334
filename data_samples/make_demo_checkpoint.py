#!/usr/bin/env python
"""Make the small demo run shipped in `data_samples/checkpoints/demo`, so the explorers open without training.

    python data_samples/make_demo_checkpoint.py            # trains in a temp folder (~1-2 min on a CPU), writes the run
    python data_samples/make_demo_checkpoint.py --work DIR # keep the full training run in DIR

It trains the `a3lign demo` recipe (the shipped tiny CLIP `a3lign-tiny-rn` with its `synthetic` image tower,
the demo's BAP epochs, the shipped synthetic clips) with one change: MAT has 8 tokens per sentence instead of the
paper's 64 (our choice, for size: at the tiny config's width W = 64, the paper's 7 x 16 x 64 x 64 MAT
is 1.8 MB per checkpoint in fp32). It keeps the checkpoint at the end of each BAP stage (the last one as `last.*` only), with only
what `runs.load_checkpoint` needs (trainable weights stored as fp16, the model and run configs, the
CLIP fingerprint, the stage), plus the run's `log.jsonl` and `eval.json`. Paths in the configs are
reset to the defaults (the shipped samples), so the folder works from any checkout. These trimmed
checkpoints cannot be resumed (no optimiser state); they are for looking at.
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT/'data_samples'/'checkpoints'/'demo'
PATH_KEYS = ('train_list', 'test_list', 'data_root', 'cache_dir')


def _clean(cfg: dict) -> dict:
    cfg = dict(cfg)
    for k in PATH_KEYS:
        if k in cfg: cfg[k] = None
    cfg.update(out_dir='runs/demo', progress=False)
    return cfg


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--work', type=Path, default=None, help='where to train (default: a temp folder, removed)')
    ap.add_argument('--out', type=Path, default=OUT, help=f'where to write the shipped run (default: {OUT.relative_to(ROOT)})')
    a = ap.parse_args(argv)
    from a3lign_nb.pipelines import DEMO_BACKBONE, DEMO_EPOCHS, train
    from a3lign_nb.models.a3lign import A3lignConfig
    from a3lign_nb.train.config import TrainConfig
    from a3lign_nb.train.checkpoint import read_checkpoint, save_checkpoint
    from a3lign_nb.utils import atomic_save_json, load_json
    work = a.work or Path(tempfile.mkdtemp(prefix='a3lign-demo-'))
    run = work/'demo'
    cfg = TrainConfig(dataset='synthetic', pretrained=DEMO_BACKBONE[1], text_epochs=DEMO_EPOCHS[0],
                      image_epochs=DEMO_EPOCHS[1], joint_epochs=DEMO_EPOCHS[2], batch_size=16, device='cpu', seed=0,
                      out_dir=str(run), overwrite=True, keep_checkpoints=0, progress=False,
                      model=A3lignConfig(backbone=DEMO_BACKBONE[0], tokens_per_sentence=8))
    rep = train(cfg)
    print(f"trained: UAR {rep['uar']:.3f} WAR {rep['war']:.3f}")
    ends = [sum(DEMO_EPOCHS[:i + 1]) for i in range(3)]
    if a.out.exists(): shutil.rmtree(a.out)
    a.out.mkdir(parents=True)
    for e in ends:
        ck = read_checkpoint(run/'checkpoints'/f'epoch_{e:03d}.json')
        state = dict(epochs_done=ck['epochs_done'], step=0, stage=ck['stage'], config=_clean(ck['config']),
                     model_config=ck['model_config'], clip_fingerprint=ck['clip_fingerprint'],
                     model={k: v.half() if v.is_floating_point() else v for k, v in ck['model'].items()},
                     note='trimmed for data_samples by data_samples/make_demo_checkpoint.py: weights in fp16, no optimiser state')
        save_checkpoint(a.out, state, name=f'epoch_{e:03d}', also_last=e == ends[-1])
    for suffix in ('.json', '.safetensors'):  # the last one is last.json/.safetensors; no second copy
        (a.out/'checkpoints'/f'epoch_{ends[-1]:03d}{suffix}').unlink()
    conf = load_json(run/'config.json')
    if 'train' in conf: conf['train'] = _clean(conf['train'])
    atomic_save_json(conf, a.out/'config.json')
    shutil.copy(run/'log.jsonl', a.out/'log.jsonl')
    ev = load_json(run/'eval.json')
    for k in ('test_list', 'run_dir'): ev.pop(k, None)
    atomic_save_json(ev, a.out/'eval.json')
    if a.work is None: shutil.rmtree(work, ignore_errors=True)
    size = sum(p.stat().st_size for p in a.out.rglob('*') if p.is_file())
    print(f'wrote {a.out} ({size / 1e6:.2f} MB): ' + ', '.join(sorted(str(p.relative_to(a.out)) for p in a.out.rglob('*') if p.is_file())))


if __name__ == '__main__':
    main()
