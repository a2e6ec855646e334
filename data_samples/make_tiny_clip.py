#!/usr/bin/env python
"""Pretrain the image tower of a tiny CLIP (default `a3lign-tiny-rn`, a small ModifiedResNet) on fresh synthetic faces.

    python data_samples/make_tiny_clip.py        # ~4 min on one CPU core; writes a3lign_nb/model_configs/a3lign-tiny-rn-synthetic.safetensors
    python data_samples/make_tiny_clip.py --steps 200 --out /tmp/x.safetensors   # a quick try
    python data_samples/make_tiny_clip.py --config a3lign-tiny                   # the ViT config (memorises identities: probe ~ chance)

Why: the lessons, tests and `a3lign demo` use a tiny CLIP config with random weights, whose frame features carry
almost no expression information (a linear probe on the shipped synthetic set is near chance). Real CLIP is
pretrained; this gives the tiny one a "pretrained on synthetic faces" image tower. A conv tower is used because
the 2-layer patch-16 ViT (`a3lign-tiny`) trained the same way memorised identities (held-out probe 0.155).

What it does (deterministic for a given `--seed`, `--steps`, `--threads`):
1. Renders `--clips-per-class` fresh clips per class in memory with the package's own generator
   (`a3lign_nb.data.synth.render_clip`), seeded by `[seed, label, k]` with `seed=1000` by default. The shipped
   set (`data_samples/synthetic`) was written with `write_synthetic_dataset(seed=0)`, whose clips are seeded
   by `[0, split, label, k, 1]` (`clip_plan`): the key spaces are disjoint, and the shipped clips (train or
   test) are never used for training or for choosing anything here.
2. Captions frames from the generator's expression envelope `track['phase']` (0 = neutral face, 1 = apex):
   the clip's class when phase > `--threshold` (0.7, near the apex), "neutral" when phase < `--neutral-below`
   (0.05) or the clip is neutral; ambiguous frames in between are dropped. The prompts are
   "a photo of a {adjective} face." with happiness->happy, sadness->sad, neutral->neutral, anger->angry,
   surprise->surprised, disgust->disgusted, fear->fearful (`PROMPT_WORDS`).
3. Builds the random tiny CLIP exactly as `a3lign_nb.testing.tiny_backbone(seed=0, name=config)` does
   (`load_backbone(config)` under `torch.manual_seed(0)`), keeps the TEXT tower frozen and unchanged, and trains only
   `model.visual.*` with CLIP's cross-entropy (image -> 7 frozen prompt features, learned logit scale, clamped
   at 100) on class-balanced batches of single frames, each augmented with `clip_transform_for(clip, train=True)`
   (random resized crop, flip, colour jitter, CLIP normalisation), AdamW + cosine schedule.
4. Saves ONLY the image-tower tensors (`visual.<key>`, incl. BatchNorm buffers; fp32, or fp16 floats when fp32
   would exceed 1 MB) as safetensors, atomically, mode 0644, with metadata (base config, text seed, generator
   seed, steps, command, the figures below).
5. Measures, on the SHIPPED set with test-time transforms and 16 middle-of-segment frames per clip:
   (a) zero-shot accuracy of the frame-mean feature vs the 7 prompt features (argmax cosine) on test.txt;
   (b) a linear probe (scikit-learn logistic regression, fit on train.txt) on mean-over-time features;
   (c) the same probe for the random tiny CLIP; (d) the probe on the middle frame only.

`a3lign_base_seed` in the metadata makes it a partial checkpoint for `load_backbone(config, PATH)` (which rebuilds the
seeded random model and overwrites the `visual.*` tensors). By hand, over the seeded random model:

    torch.manual_seed(0); clip = load_backbone('a3lign-tiny-rn');  sd = safetensors.torch.load_file(PATH)
    clip.model.visual.load_state_dict({k[len('visual.'):]: v.to(clip.dtype) if v.is_floating_point() else v
                                       for k, v in sd.items()}, strict=True)
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
CLIP_DIR = ROOT/'a3lign_nb'/'model_configs'  # shipped beside its config: load_backbone(config, 'synthetic') finds it
SHIPPED = ROOT/'data_samples'/'synthetic'
BASE = 'a3lign-tiny-rn'  # default config: the conv image tower (a ViT from scratch memorised identities)
TEXT_SEED = 0
PROMPT_WORDS = dict(happiness='happy', sadness='sad', neutral='neutral', anger='angry', surprise='surprised',
                    disgust='disgusted', fear='fearful')  # class name -> the adjective in the prompt


def prompts(classes) -> list[str]:
    "The 7 prompts, in label order."
    return [f'a photo of a {PROMPT_WORDS[c]} face.' for c in classes]


def seeded_clip(base: str = BASE):
    "The random tiny CLIP, exactly as `a3lign_nb.testing.tiny_backbone(seed=0)` builds it (a fresh, uncached copy)."
    from a3lign_nb.backbone import make_backbone
    return make_backbone(base, None, 'cpu', seed=TEXT_SEED)


def render_frames(clips_per_class: int, seed: int, threshold: float, neutral_below: float = 0.05, frames=(12, 20),
                  keep: int = 4, size: int = 64):
    """Fresh clips in memory -> (frames uint8 [N, S, S, 3], captions int64 [N], clip id int64 [N]).

    Captions come from the expression envelope `track['phase']` (0 = neutral face, 1 = apex): the clip's class
    when `phase > threshold` (near the apex), "neutral" when `phase < neutral_below` (or any frame of a neutral
    clip); frames in between are ambiguous and dropped. Many identities matter more than many frames of one
    identity, so each clip is short and only `keep` of its frames are kept: for an expressive clip up to
    `keep - 1` apex frames and one neutral frame; for a neutral clip `keep // 2`."""
    from a3lign_nb.data.synth import SYNTH_CLASSES, render_clip
    neutral = SYNTH_CLASSES.index('neutral')
    xs, caps, ids = [], [], []
    for label in range(len(SYNTH_CLASSES)):
        for k in range(clips_per_class):
            rng = np.random.default_rng([seed, label, k])
            n = int(rng.integers(frames[0], frames[1] + 1))
            x, tr = render_clip(label, n, size, rng, return_track=True)
            if label == neutral: pick, cap = rng.choice(n, keep // 2, replace=False), np.full(keep // 2, neutral)
            else:
                up, down = np.flatnonzero(tr['phase'] > threshold), np.flatnonzero(tr['phase'] < neutral_below)
                up = rng.choice(up, min(len(up), keep - 1), replace=False)
                down = rng.choice(down, min(len(down), 1), replace=False)
                pick = np.concatenate([up, down]).astype(np.int64)
                cap = np.concatenate([np.full(len(up), label), np.full(len(down), neutral)])
            xs.append(x[pick]); caps.append(cap); ids.append(np.full(len(pick), label * clips_per_class + k))
    return np.concatenate(xs), torch.as_tensor(np.concatenate(caps)).long(), torch.as_tensor(np.concatenate(ids)).long()


def balanced_batches(caps: torch.Tensor, batch: int, steps: int, g: torch.Generator):
    "Per step, `batch` frame indices with every caption equally likely."
    C = int(caps.max()) + 1
    groups = [torch.nonzero(caps == c).flatten() for c in range(C)]
    for _ in range(steps):
        c = torch.randint(0, C, (batch,), generator=g)
        yield torch.stack([groups[int(ci)][torch.randint(0, len(groups[int(ci)]), (), generator=g)] for ci in c])


@torch.no_grad()
def text_features(backbone, classes) -> torch.Tensor:
    "Normalised prompt features [C, D] from the frozen text tower."
    return F.normalize(backbone.encode_text(backbone.tokenize(prompts(classes))), dim=-1)


def train_visual(backbone, frames, caps, classes, steps, batch, lr, wd, seed, log_every=100):
    "Train `clip.model.visual` only (CLIP cross-entropy vs frozen prompt features); the text tower is untouched."
    from a3lign_nb.data.video import clip_transform_for
    tf = clip_transform_for(backbone, train=True)
    txt = text_features(backbone, classes)  # [C, D]
    vis = backbone.model.visual
    for p in vis.parameters(): p.requires_grad_(True)
    vis.train()
    log_scale = torch.nn.Parameter(torch.tensor(math.log(1 / 0.07)))  # learned temperature (CLIP's init)
    opt = torch.optim.AdamW([{'params': list(vis.parameters()), 'weight_decay': wd},
                             {'params': [log_scale], 'weight_decay': 0.0}], lr=lr)
    warm = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, steps - warm))))
    g = torch.Generator().manual_seed(seed)
    arng = np.random.default_rng([seed, 1])
    t0, run_loss, run_acc = time.time(), 0.0, 0.0
    for step, idx in enumerate(balanced_batches(caps, batch, steps, g), 1):
        x = torch.cat([tf(frames[int(i)][None], arng) for i in idx])  # [B, 3, S, S], each frame its own augmentation
        y = caps[idx]
        f = F.normalize(vis(x), dim=-1)  # [B, D]
        logits = log_scale.clamp(max=math.log(100)).exp() * f @ txt.T  # [B, C]
        loss = F.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step(); sched.step()
        run_loss += loss.item(); run_acc += (logits.argmax(1) == y).float().mean().item()
        if step % log_every == 0 or step == steps:
            n = log_every if step % log_every == 0 else step % log_every
            print(f'  step {step:5d}/{steps}  loss {run_loss / n:.3f}  frame acc {run_acc / n:.3f}  '
                  f'logit scale {log_scale.exp().item():.1f}  lr {sched.get_last_lr()[0]:.2e}  {time.time() - t0:.0f}s', flush=True)
            run_loss = run_acc = 0.0
    backbone.lock()  # back to frozen + eval
    return dict(logit_scale=float(log_scale.detach().exp().clamp(max=100)))


@torch.no_grad()
def shipped_features(clips: dict, list_file: Path, num_segments=16, batch=32, spec='synthetic'):
    "Test-time features of the shipped clips for each CLIP in `clips` -> ({name: [N, T, D]}, labels [N])."
    from a3lign_nb.data.datasets import ClipDataset, get_spec, make_loader, read_annotations
    from a3lign_nb.data.video import clip_transform_for
    some = next(iter(clips.values()))
    ds = ClipDataset(read_annotations(list_file, spec=get_spec(spec)), num_segments=num_segments, train=False,
                     transform=clip_transform_for(some, train=False))
    out, labels = {k: [] for k in clips}, []
    for b in make_loader(ds, batch, shuffle=False, pin_memory=False):
        for k, c in clips.items(): out[k].append(c.encode_frames(b['frames']))
        labels.append(b['label'])
    return {k: torch.cat(v) for k, v in out.items()}, torch.cat(labels)


def linear_probe(xtr, ytr, xte, yte, C=1.0) -> float:
    "Multinomial logistic regression (scikit-learn, L2 `C`) on L2-normalised + standardised features; test accuracy."
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    xtr, xte = F.normalize(xtr, dim=-1).numpy(), F.normalize(xte, dim=-1).numpy()
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000)).fit(xtr, ytr.numpy())
    return float((clf.predict(xte) == yte.numpy()).mean())


def evaluate(trained, random_clip, classes, root=SHIPPED) -> dict:
    "Figures (a)-(d) on the shipped set (probes fit on train.txt, scored on test.txt)."
    ftr, ytr = shipped_features(dict(trained=trained, random=random_clip), root/'train.txt')
    fte, yte = shipped_features(dict(trained=trained, random=random_clip), root/'test.txt')
    txt = text_features(trained, classes)
    zs = lambda f: float((F.normalize(f.mean(1), dim=-1) @ txt.T).argmax(1).eq(yte).float().mean())
    mid = ftr['trained'].shape[1] // 2
    return dict(
        zero_shot_test=zs(fte['trained']),
        probe_test=linear_probe(ftr['trained'].mean(1), ytr, fte['trained'].mean(1), yte),
        probe_test_random=linear_probe(ftr['random'].mean(1), ytr, fte['random'].mean(1), yte),
        probe_test_middle_frame=linear_probe(ftr['trained'][:, mid], ytr, fte['trained'][:, mid], yte),
        zero_shot_test_random=zs(fte['random']),
        chance=1 / len(classes))


def save(backbone, path: Path, meta: dict, max_fp32_bytes: int = 1_000_000):
    "The image tower only (`visual.*`; fp32, or fp16 when fp32 would exceed `max_fp32_bytes`), atomically, with string metadata."
    return save_tensors({f'visual.{k}': v for k, v in backbone.model.visual.state_dict().items()}, path, meta, max_fp32_bytes)


def save_tensors(sd: dict, path: Path, meta: dict, max_fp32_bytes: int = 1_000_000):
    "Tensors `sd` (fp32, or fp16 floats when fp32 would exceed `max_fp32_bytes`) as safetensors, atomically, mode 0644, with string metadata."
    from safetensors.torch import save_file
    from a3lign_nb.utils import atomic_path
    sd = {k: (v.detach().float() if v.is_floating_point() else v.detach()).contiguous().clone()
          for k, v in sd.items()}  # integer tensors (BatchNorm counters, row indices) keep their dtype
    if sum(v.numel() * 4 for v in sd.values()) > max_fp32_bytes:  # halve the file; integer buffers (BN counters) stay
        sd = {k: v.half() if v.is_floating_point() else v for k, v in sd.items()}
    meta = {**meta, 'dtype': 'float16' if any(v.dtype == torch.float16 for v in sd.values()) else 'float32'}
    with atomic_path(path) as tmp:
        save_file(sd, str(tmp), metadata={k: str(v) for k, v in meta.items()})
        tmp.chmod(0o644)  # mkstemp makes 0600; the shipped file should be readable
    return sd


def common_args(ap: argparse.ArgumentParser, seed: int, steps: int, seed_help: str) -> argparse.ArgumentParser:
    "The options both tiny-CLIP scripts take: generator seed, steps, learning rate, weight decay, threads."
    ap.add_argument('--seed', type=int, default=seed, help=seed_help)
    ap.add_argument('--steps', type=int, default=steps, help='optimiser steps')
    ap.add_argument('--lr', type=float, default=2e-3, help='AdamW peak learning rate (warm-up, then cosine)')
    ap.add_argument('--wd', type=float, default=0.05, help='AdamW weight decay (make_tiny_clip_words.py: weight matrices only)')
    ap.add_argument('--threads', type=int, default=1, help='torch CPU threads (1 is fastest on a busy shared machine)')
    return ap


def parse(ap: argparse.ArgumentParser, argv):
    "Parse; set the threads and the global seed."
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    return a


def main(argv=None):
    ap = common_args(argparse.ArgumentParser(description=__doc__.split('\n')[0]), 1000, 900,
                     'generator seed of the training clips (the shipped set used 0)')
    ap.add_argument('--config', default=BASE, help='open_clip config of the tiny CLIP (shipped in a3lign_nb/model_configs)')
    ap.add_argument('--out', type=Path, default=None, help='where to write (default: a3lign_nb/model_configs/<config>-synthetic.safetensors)')
    ap.add_argument('--clips-per-class', type=int, default=400, help='fresh training clips per class (12-20 frames each; 4 kept per clip)')
    ap.add_argument('--threshold', type=float, default=0.7, help="caption a frame with its class when the expression envelope > this")
    ap.add_argument('--neutral-below', type=float, default=0.05, help="caption a frame 'neutral' when the envelope < this; frames in between are dropped")
    ap.add_argument('--batch', type=int, default=128, help='frames per step')
    ap.add_argument('--no-eval', action='store_true', help='skip the figures on the shipped set')
    a = parse(ap, argv)
    a.out = a.out or CLIP_DIR/f'{a.config}-synthetic.safetensors'
    from a3lign_nb.data.synth import GENERATOR_VERSION, SYNTH_CLASSES
    classes = SYNTH_CLASSES
    t0 = time.time()
    frames, caps, _ = render_frames(a.clips_per_class, a.seed, a.threshold, a.neutral_below)
    counts = torch.bincount(caps, minlength=len(classes)).tolist()
    print(f'rendered {len(frames)} frames from {a.clips_per_class * len(classes)} clips (seed {a.seed}) in '
          f'{time.time() - t0:.0f}s; frames per caption: {dict(zip(classes, counts))}', flush=True)
    backbone = seeded_clip(a.config)
    text_before = {k: v.clone() for k, v in backbone.model.state_dict().items() if not k.startswith('visual.')}
    t1 = time.time()
    info = train_visual(backbone, frames, caps, classes, a.steps, a.batch, a.lr, a.wd, a.seed)
    train_s = time.time() - t1
    changed = [k for k, v in backbone.model.state_dict().items() if k in text_before and not torch.equal(v, text_before[k])]
    if changed: raise RuntimeError(f'the text tower changed ({changed[:3]}...): only model.visual may be trained')
    figs = {}
    if not a.no_eval:
        t2 = time.time()
        figs = evaluate(backbone, seeded_clip(a.config), classes)
        print(f'evaluated on the shipped set in {time.time() - t2:.0f}s', flush=True)
    meta = dict(base_config=a.config, text_seed=TEXT_SEED, init_seed=TEXT_SEED, a3lign_base_seed=TEXT_SEED, generator='a3lign_nb.data.synth',
                generator_version=GENERATOR_VERSION, generator_seed=a.seed, clips_per_class=a.clips_per_class,
                train_frames=len(frames), caption_threshold=a.threshold, neutral_below=a.neutral_below, steps=a.steps, batch=a.batch, lr=a.lr,
                weight_decay=a.wd, logit_scale=round(info['logit_scale'], 2), prompts=json.dumps(prompts(classes)),
                classes=json.dumps(list(classes)), script='data_samples/make_tiny_clip.py',
                figures=json.dumps({k: round(v, 4) for k, v in figs.items()}),
                command=f'python data_samples/make_tiny_clip.py --config {a.config} --seed {a.seed} --clips-per-class {a.clips_per_class} '
                        f'--threshold {a.threshold} --neutral-below {a.neutral_below} --steps {a.steps} --batch {a.batch} --lr {a.lr} --wd {a.wd}')
    save(backbone, a.out, meta)
    print(f'wrote {a.out} ({a.out.stat().st_size / 1024:.0f} KiB); training {train_s:.0f}s, total {time.time() - t0:.0f}s')
    if figs:
        print('figures on the shipped set (test.txt; probes fit on train.txt; 16 middle-of-segment frames, test transforms):')
        print(f"  (a) zero-shot, frame-mean vs 7 prompts:      {figs['zero_shot_test']:.3f}  (random tiny CLIP: {figs['zero_shot_test_random']:.3f})")
        print(f"  (b) linear probe, mean over time:            {figs['probe_test']:.3f}")
        print(f"  (c) linear probe, random tiny CLIP:          {figs['probe_test_random']:.3f}")
        print(f"  (d) linear probe, middle frame only:         {figs['probe_test_middle_frame']:.3f}")
        print(f"      chance:                                  {figs['chance']:.3f}")
    return figs


if __name__ == '__main__':
    main()
