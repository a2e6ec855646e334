"""`a3lign prepare` and `a3lign predict` on long multi-shot videos: frames per second (and x real time) and peak memory.

    OMP_NUM_THREADS=1 python benchmarks/bench_own_video.py [--sizes 176x144 1440x1080] [--seconds 20 60] [--cut 3.6]

Each video is an "interview" built from the two real faces that ship in wheels (carphone, the astronaut photo; see
`a3lign_nb.data.faces.interview_video`), at 25 fps, with a hard cut every `--cut` seconds, written frame by frame
(x264) into a temporary folder. Each command then runs in a fresh process (`python -c`), which reports its own wall
time and peak resident memory (`VmHWM`, its own: `ru_maxrss` would hold the parent's peak, which Linux keeps across
exec): prepare with the default detector (Haar, 8 detections a second) and the main face; predict with the shipped demo model (the tiny `a3lign-tiny-rn` backbone: a real CLIP's image tower costs more,
see `bench_predict.py`). `x real time` is the video's duration over the wall time (2 = twice as fast as playing it).

Measured December 2026 on the project's 2-core machine, nothing else running (load average 1-2), no OMP_NUM_THREADS
(OpenCV and torch on both cores; decoding runs a few frames ahead in a thread of its own), a cut every 3.6 s, after
the speed-ups of issue 23's second pass (the scan decodes without deblocking and scales with a fast filter; one
whole-frame search a second; a cheaper search near a known face; the crops decoded no larger than they need). Two
runs each (`--seconds 20 60`, then `--sizes 1440x1080 --seconds 60 20`); predict's wall time leaves out loading the
model (0.5-0.8 s, once per command):

    command        size seconds frames  wall s    fps x real  peak MB
    prepare     176x144      20    500     2.4  205.9   8.24      825
    predict     176x144      20    500     2.6  194.0   7.76      921
    prepare     176x144      60   1500     8.0  186.8   7.47      826
    predict     176x144      60   1500     7.6  198.6   7.94      925
    prepare   1440x1080      20    500  8.9-9.7   52-56  2.05-2.24   870
    predict   1440x1080      20    500  9.2-9.8   51-54  2.04-2.17   961
    prepare   1440x1080      60   1500 31.8-32.9  46-47 1.82-1.89   871
    predict   1440x1080      60   1500 32.3-35.6  42-46 1.69-1.86   968

Peak memory is flat in length (870 and 871 MB for prepare at 1440x1080, 961 and 968 MB for predict). At 1440x1080
the 20 s file runs at 2.0-2.2x real time and the 60 s file at 1.7-1.9x, short of 2x (per frame the longer file's
second pass is slower, with the same crop size: not explained). Before these changes: 1.94x / 1.82x on the 20 s
file. Where the time goes now (a profile of the 60 s scan): the Haar cascade 7.5 s of 13.8 s, waiting on the decoder
3.2 s, thumbnails and crops 1.5 s; prepare's second pass (decode at the crop size, JPEG, write) about 18 s.
"""
import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np


def write_long_video(path: Path, size: tuple, seconds: float, cut: float, fps: int = 25) -> Path:
    "An interview-style mp4 of `seconds` at `size` (w, h): shots of `cut` seconds alternating carphone and the astronaut, streamed."
    import av
    from a3lign_nb.data.faces import _photo_shot, read_video, sample_face_image, sample_face_video
    w, h = size
    car, _, _ = read_video(sample_face_video())  # [120, 144, 176, 3]
    photo = sample_face_image()
    n, per = int(round(seconds * fps)), int(round(cut * fps))
    with av.open(str(path), 'w') as c:
        s = c.add_stream('libx264', rate=fps, options={'preset': 'superfast', 'crf': '23'})
        s.width, s.height, s.pix_fmt = w, h, 'yuv420p'
        k, shot = 0, 0
        while k < n:
            m = min(per, n - k)
            if shot % 2 == 0:  # carphone, scaled to the frame's height and centred
                sw = round(176 * h / 144) // 2 * 2
                frames = (np.pad(cv2.resize(car[(k + i) % 120], (sw, h)), ((0, 0), (max(0, (w - sw) // 2),) * 2, (0, 0)), mode='edge')[:, :w]
                          for i in range(m))
            else:
                frames = iter(_photo_shot(photo, m, (h, w), (223 + 5 * (shot % 3), 170), 330, 0.1, (8, 0)))
            for f in frames:
                f = np.ascontiguousarray(cv2.resize(f, (w, h)) if f.shape[:2] != (h, w) else f)
                for p in s.encode(av.VideoFrame.from_ndarray(f, format='rgb24')): c.mux(p)
            k, shot = k + m, shot + 1
        for p in s.encode(): c.mux(p)
    return path


CHILD = r'''
import json, resource, sys, time, warnings
warnings.simplefilter('ignore')
what, video, out = sys.argv[1:4]
from a3lign_nb.explore.tokens import shipped_run
from a3lign_nb.predict import predict
from a3lign_nb.prepare import prepare
t0 = time.perf_counter()  # the command's work, after Python and torch have started (seconds, not part of a video's cost)
if what == 'prepare':
    rep = prepare([video], out, progress=False, verbose=False); extra = dict(coverage=rep['videos'][0]['coverage'])
else:
    from a3lign_nb.factory import load_model
    model = load_model(shipped_run(), device='cpu')  # once per command, whatever the number of videos: timed apart
    load, t0 = time.perf_counter() - t0, time.perf_counter()
    res = predict([video], model, out, html=False, progress=False, verbose=False, device='cpu')[0]
    extra = dict(load_s=round(load, 2), windows=res['summary']['windows'], cuts=len(res['cuts']), faces=len(res['summary']['faces']))
wall = time.perf_counter() - t0
try: peak = int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]) / 1024  # this process's own peak
except (OSError, StopIteration): peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # (Linux keeps the parent's there)
print(json.dumps(dict(wall=wall, peak_mb=peak, **extra)))
'''


def run(what: str, video: Path, out: Path) -> dict:
    p = subprocess.run([sys.executable, '-c', CHILD, what, str(video), str(out)], capture_output=True, text=True)
    if p.returncode: raise SystemExit(f'{what} failed on {video}:\n{p.stderr[-2000:]}')
    return json.loads(p.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--sizes', nargs='+', default=['176x144', '1440x1080'], help='frame sizes, WxH')
    ap.add_argument('--seconds', type=float, nargs='+', default=[20, 60], help='video lengths (two: memory flat in length?)')
    ap.add_argument('--cut', type=float, default=3.6, help='seconds between hard cuts')
    ap.add_argument('--commands', nargs='+', default=['prepare', 'predict'])
    ap.add_argument('--repeat', type=int, default=1, help='runs of each command on the same video (a shared machine is noisy: read the best)')
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix='bench_own_video_'))
    print(f"{'command':8s} {'size':>10s} {'seconds':>7s} {'frames':>6s} {'wall s':>7s} {'fps':>6s} {'x real':>6s} {'peak MB':>8s}  facts")
    for size in a.sizes:
        w, h = map(int, size.split('x'))
        for sec in a.seconds:
            t = time.perf_counter()
            v = write_long_video(tmp/f'talk_{size}_{int(sec)}s.mp4', (w, h), sec, a.cut)
            print(f'# wrote {v.name} in {time.perf_counter() - t:.0f} s', flush=True)
            n = int(round(sec * 25))
            for cmd in [c for c in a.commands for _ in range(a.repeat)]:
                shutil.rmtree(tmp/f'out_{cmd}_{size}_{int(sec)}', ignore_errors=True)
                r = run(cmd, v, tmp/f'out_{cmd}_{size}_{int(sec)}')
                facts = {k: r[k] for k in r if k not in ('wall', 'peak_mb')}
                print(f"{cmd:8s} {size:>10s} {sec:7.0f} {n:6d} {r['wall']:7.1f} {n / r['wall']:6.1f} {sec / r['wall']:6.2f} {r['peak_mb']:8.0f}  {facts}",
                      flush=True)
            v.unlink()


if __name__ == '__main__': main()
