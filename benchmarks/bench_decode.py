"""Decode throughput (clips/s) for 16-frame TSN sampling resized to 224 px: decord vs PyAV vs frame folders,
with 0, 1 and 2 DataLoader workers.

    python benchmarks/bench_decode.py [--clips 48] [--frames 64] [--batch 4] [--repeats 2]

The clips are synthetic faces (`a3lign_nb.data.synth`) drawn at 64 px and upscaled to 224 px with camera
noise added, written once to a temporary folder as H.264 mp4 (yuv420p) and as JPEG frame folders (quality
90, like DFEW's clip_224x224). Each figure is the best of `--repeats` full passes over the set, including
worker start-up; the transform is the test-time `ClipTransform(224)` (resize + centre crop + normalise).
"""
import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from a3lign_nb.data.datasets import ClipDataset, ClipRecord, make_loader
from a3lign_nb.data.synth import render_clip, write_video
from a3lign_nb.data.video import HAS_DECORD, ClipTransform


def make_set(root: Path, n_clips: int, n_frames: int, size: int = 224):
    vids, folders = [], []
    rng = np.random.default_rng(0)
    for k in range(n_clips):
        small = render_clip(k % 7, n_frames, 64, k)
        big = np.stack([np.asarray(Image.fromarray(f).resize((size, size), Image.Resampling.BICUBIC)) for f in small])
        big = np.clip(big + rng.normal(0, 3, big.shape), 0, 255).astype(np.uint8)
        v = write_video(root / 'mp4' / f'{k:04d}.mp4', big, crf=20)
        d = root / 'jpg' / f'{k:05d}'; d.mkdir(parents=True)
        for i, f in enumerate(big, 1): Image.fromarray(f).save(d / f'{k:05d}_{i:05d}.jpg', quality=90)
        vids.append(ClipRecord(v, n_frames, k % 7, f'bench:{k}'))
        folders.append(ClipRecord(d, n_frames, k % 7, f'bench:{k}'))
    return vids, folders


def clips_per_s(records, backend, workers, batch, repeats):
    ds = ClipDataset(records, num_segments=16, train=False, transform=ClipTransform(224), backend=backend)
    best = 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        n = sum(b['frames'].shape[0] for b in make_loader(ds, batch, shuffle=False, num_workers=workers))
        best = max(best, n / (time.perf_counter() - t))
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--clips', type=int, default=48)
    ap.add_argument('--frames', type=int, default=64, help='frames per clip (DFEW median ~68)')
    ap.add_argument('--batch', type=int, default=4)
    ap.add_argument('--repeats', type=int, default=2)
    ap.add_argument('--workers', type=int, nargs='+', default=[0, 1, 2])
    a = ap.parse_args()
    torch.set_num_threads(1)  # DataLoader workers run with one thread each; the main process too, for parity
    root = Path(tempfile.mkdtemp(prefix='bench_decode_'))
    try:
        t = time.perf_counter()
        vids, folders = make_set(root, a.clips, a.frames)
        mb = lambda d: sum(f.stat().st_size for f in (root / d).rglob('*') if f.is_file()) / 2**20
        print(f'set: {a.clips} clips x {a.frames} frames at 224 px (mp4 {mb("mp4"):.1f} MB, jpg {mb("jpg"):.1f} MB), '
              f'made in {time.perf_counter() - t:.0f} s; {torch.get_num_threads()} torch thread(s), batch {a.batch}')
        cases = ([('decord', vids, 'decord')] if HAS_DECORD else []) + [('pyav', vids, 'pyav'), ('frame folder', folders, 'auto')]
        print(f'{"reader":<14}' + ''.join(f'{f"workers={w}":>12}' for w in a.workers) + '   (clips/s, 16 frames -> 224 px)')
        for name, recs, backend in cases:
            row = [clips_per_s(recs, backend, w, a.batch, a.repeats) for w in a.workers]
            print(f'{name:<14}' + ''.join(f'{r:>12.1f}' for r in row), flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == '__main__':
    main()
