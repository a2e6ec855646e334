"""Training and extraction benchmarks (CPU by default; prints figures).

(a) one training epoch from the feature cache vs straight from video, same config (ViT-B-16-sized CLIP, random weights)
(b) extraction throughput: the whole pipeline (decode + transform + encode + write) vs bare encode_image on the same tensors
(c) peak memory (RSS) of `a3lign demo`

    python benchmarks/bench_train.py                 # all three, on data_samples/synthetic
    python benchmarks/bench_train.py --only a --clips-per-class 2 --device cpu
"""
import argparse
import dataclasses
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch


def subset_lists(out: Path, per_class_train: int, per_class_test: int):
    from a3lign_nb.data.datasets import read_annotations, write_annotations
    from a3lign_nb.utils import REPO_SAMPLES
    data = REPO_SAMPLES/'synthetic'
    for split, k in (('train', per_class_train), ('test', per_class_test)):
        recs = read_annotations(data/f'{split}.txt')
        write_annotations([r for c in range(7) for r in [r for r in recs if r.label == c][:k]], out/f'{split}.txt', data_root=data)
    return data


def bench_a(args, tmp: Path):
    from a3lign_nb import factory
    from a3lign_nb.train.config import TrainConfig
    from a3lign_nb.models.a3lign import A3lignConfig
    from a3lign_nb.backbone import make_backbone
    from a3lign_nb.utils import get_device
    from a3lign_nb.train import loop
    data = subset_lists(tmp, args.clips_per_class, 1)
    base = TrainConfig(train_list=str(tmp/'train.txt'), test_list=str(tmp/'test.txt'), data_root=str(data),
                            pretrained='none', schedule='joint-only', text_epochs=0, image_epochs=0,
                            joint_epochs=args.epochs, batch_size=args.batch_size, device=args.device, progress=False,
                            eval_every=0, model=A3lignConfig(backbone=args.backbone, num_sentences=args.sentences, tokens_per_sentence=args.tokens))
    dev = get_device(args.device)
    spec, tr, ts, root = factory.read_lists(base)
    backbone = make_backbone(base.model.backbone, None, dev, 0)
    t = time.time()
    cached = dataclasses.replace(base, cache_dir=str(tmp/'cache'))
    train_c, _, _ = factory.make_datasets(cached, backbone, tr, ts, root, dev)
    t_cache = time.time() - t
    train_v, _, _ = factory.make_datasets(dataclasses.replace(base, use_cache=False), backbone, tr, ts, root, dev)
    out = {}
    for name, ds in (('cache', train_c), ('video', train_v)):
        model = factory.build_model(base, backbone).to(dev)
        loop.fit(model, ds, base, tmp/f'run_{name}', device=dev, classes=spec.classes)
        log = [json.loads(l) for l in open(tmp/f'run_{name}'/'log.jsonl')]
        out[name] = min(r['epoch_s'] for r in log)
    frames = sum(min(r.num_frames, base.max_frames or 10**9) for r in list(tr) + list(ts))
    print(f"(a) {args.backbone} random weights, {len(tr)} training clips, batch {args.batch_size}, MAT {args.sentences}x{args.tokens}, "
          f"{args.device}: epoch from cache {out['cache']:.2f} s, from video {out['video']:.2f} s -> "
          f"video/cache = {out['video']/out['cache']:.1f}x  (cache build, once: {t_cache:.1f} s for {frames} frames)"
          + (f'; peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB' if dev.type == 'cuda' else ''))
    return out


def bench_b(args, tmp: Path):
    from a3lign_nb.data.datasets import read_annotations
    from a3lign_nb.data.video import clip_transform_for, read_frames
    from a3lign_nb.backbone import make_backbone
    from a3lign_nb.utils import get_device
    from a3lign_nb.data.video import cached_frame_indices
    from a3lign_nb.train.cache import build_cache
    data = subset_lists(tmp, args.clips_per_class, 0)
    recs = list(read_annotations(tmp/'train.txt', data_root=data))
    dev = get_device(args.device)
    backbone = make_backbone(args.backbone, None, dev, 0)
    n = sum(r.num_frames for r in recs)
    with torch.inference_mode(): backbone.encode_images(torch.zeros(2, 3, backbone.image_size, backbone.image_size, device=dev))  # warm-up
    t = time.time()
    build_cache(recs, backbone, tmp/'cache_b', root=data, max_frames=None, batch_frames=args.extract_batch, device=dev,
                num_workers=args.workers, progress=False)
    pipe = n / (time.time() - t)
    tf = clip_transform_for(backbone)
    x = torch.cat([tf(read_frames(r.path, cached_frame_indices(r.num_frames, None))) for r in recs])  # [N,3,S,S]
    t = time.time()
    with torch.inference_mode():
        for c in x.split(args.extract_batch): backbone.encode_images(c.to(dev))
    if dev.type == 'cuda': torch.cuda.synchronize()
    bare = n / (time.time() - t)
    print(f'(b) extraction, {args.backbone} random weights, {len(recs)} clips / {n} frames, batch {args.extract_batch}, '
          f'{args.workers} workers, {args.device}: pipeline {pipe:.1f} frames/s, bare encode_image {bare:.1f} frames/s -> '
          f'pipeline/bare = {pipe/bare:.2f}')
    return pipe, bare


def bench_c(args, tmp: Path):
    cmd = [sys.executable, '-m', 'a3lign_nb.cli', 'demo', '--out-dir', str(tmp/'demo'), '--no-progress']
    t = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.time() - t
    if p.returncode: raise SystemExit(p.stderr)
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # kB -> MB on Linux
    line = [l for l in p.stdout.splitlines() if 'UAR' in l][-1]
    print(f'(c) a3lign demo (fresh cache): peak RSS {rss:.0f} MB, wall {wall:.0f} s; {line.strip()}')
    return rss


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--only', default='abc', help='which benchmarks: any of a, b, c')
    ap.add_argument('--backbone', '--clip', default='ViT-B-16-quickgelu', help='open_clip model name (random weights)')
    ap.add_argument('--device', default='cpu')
    ap.add_argument('--clips-per-class', type=int, default=2, help='training clips per class (7 classes)')
    ap.add_argument('--batch-size', type=int, default=7)
    ap.add_argument('--epochs', type=int, default=2, help='epochs per path; the fastest is reported')
    ap.add_argument('--sentences', type=int, default=16, help='MAT sentences per class (paper: 16)')
    ap.add_argument('--tokens', type=int, default=64, help='MAT tokens per sentence (paper: 64)')
    ap.add_argument('--extract-batch', type=int, default=64)
    ap.add_argument('--workers', type=int, default=0)
    ap.add_argument('--threads', type=int, default=0, help='torch threads (0: default)')
    args = ap.parse_args()
    if args.threads: torch.set_num_threads(args.threads)
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads')
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        if 'a' in args.only: bench_a(args, d/'a')
        if 'b' in args.only: bench_b(args, d/'b')
        if 'c' in args.only: bench_c(args, d/'c')
