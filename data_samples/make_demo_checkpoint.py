#!/usr/bin/env python
"""Make the small demo run shipped in `data_samples/checkpoints/demo`, so the explorers open without training.

    python data_samples/make_demo_checkpoint.py            # trains in a temp folder (~1 min on a CPU), writes the run
    python data_samples/make_demo_checkpoint.py --work DIR # keep the full training run in DIR
    python data_samples/make_demo_checkpoint.py --work DIR --reuse  # trim a finished run in DIR again, without training

It trains exactly the `a3lign demo` recipe (`pipelines.DEMO_*`): the shipped tiny CLIP `a3lign-tiny-rn` with its
`words` weights (both towers pretrained on synthetic faces and captions), the shipped `synthetic-time` clips (the
order of the frames decides the class, so the explorers have time to show), a small MAT (S = 4 sentences of
K = 8 tokens, initialised from the class names: our choice, for size and so that the token explorer starts on
words) and the demo's BAP epochs. It keeps the checkpoint at the end of each BAP stage (the last one as `last.*`
only), with only what `load_checkpoint` needs (trainable weights stored as fp16, the model and run configs, the
CLIP fingerprint, the stage), plus the run's `log.jsonl` and `eval.json`. Paths in the configs are reset to the
defaults (the shipped samples of the run's dataset), so the folder works from any checkout. These trimmed
checkpoints cannot be resumed (no optimiser state); they are for looking at. The explorers add the run's
initial state (rebuilt from its config and seed) in front of them.
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
    ap.add_argument('--reuse', action='store_true', help='reuse a finished run in --work instead of training again')
    ap.add_argument('--out', type=Path, default=OUT, help=f'where to write the shipped run (default: {OUT.relative_to(ROOT)})')
    a = ap.parse_args(argv)
    from a3lign_nb.pipelines import DEMO_BACKBONE, DEMO_EPOCHS, DEMO_MODEL, DEMO_SET, train
    from a3lign_nb.models.a3lign import A3lignConfig
    from a3lign_nb.train.config import TrainConfig
    from a3lign_nb.train.checkpoint import read_checkpoint, save_checkpoint
    from a3lign_nb.utils import atomic_save_json, load_json
    work = a.work or Path(tempfile.mkdtemp(prefix='a3lign-demo-'))
    run = work/'demo'
    cfg = TrainConfig(dataset=DEMO_SET, pretrained=DEMO_BACKBONE[1], text_epochs=DEMO_EPOCHS[0],
                      image_epochs=DEMO_EPOCHS[1], joint_epochs=DEMO_EPOCHS[2], batch_size=32, device='cpu', seed=0,
                      out_dir=str(run), overwrite=True, keep_checkpoints=0, progress=False,
                      model=A3lignConfig(backbone=DEMO_BACKBONE[0], **DEMO_MODEL))
    if a.reuse and (run/'eval.json').exists(): rep = load_json(run/'eval.json')  # a finished run in --work
    else: rep = train(cfg)
    print(f"trained: UAR {rep['uar']:.3f} WAR {rep['war']:.3f}")
    ends = [sum(DEMO_EPOCHS[:i + 1]) for i in range(3)]
    if a.out.exists(): shutil.rmtree(a.out)
    a.out.mkdir(parents=True)
    for e in ends:
        ck = read_checkpoint(run/'checkpoints'/f'epoch_{e:03d}.json')
        state = dict(epochs_done=ck['epochs_done'], step=0, stage=ck['stage'], config=_clean(ck['config']),
                     clip_fingerprint=ck['clip_fingerprint'],
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
