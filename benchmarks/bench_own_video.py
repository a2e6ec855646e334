"""`a3lign prepare` and `a3lign predict` on long multi-shot videos: frames per second (and x real time) and peak memory.

    OMP_NUM_THREADS=1 python benchmarks/bench_own_video.py [--sizes 176x144 1440x1080] [--seconds 20 60] [--cut 3.6]

Each video is an "interview" built from the two real faces that ship in wheels (carphone, the astronaut photo; see
`a3lign_nb.data.faces.interview_video`), at 25 fps, with a hard cut every `--cut` seconds, written frame by frame
(x264) into a temporary folder. Each command then runs in a fresh process (`python -c`), which reports its own wall
time and peak resident memory (`VmHWM`, its own: `ru_maxrss` would hold the parent's peak, which Linux keeps across
exec): prepare with the default detector (Haar, 8 detections a second) and the main face; predict with the shipped demo model (the tiny `a3lign-tiny-rn` backbone: a real CLIP's image tower costs more,
see `bench_predict.py`). `x real time` is the video's duration over the wall time (2 = twice as fast as playing it).

Measured December 2026 on the project's 2-core machine (load average 1-2.5: another tenant shares the host, so runs of
the same command differ by up to 20%), no OMP_NUM_THREADS (OpenCV and torch on both cores; decoding runs ahead in a
thread of its own), a cut every 3.6 s, after issue 23's third pass: the second pass converts only the square around each
face, read from the frame's planes (`iter_crops`); the scan converts only the frames the detector looks at (and a
64-pixel thumbnail of every frame for the cut detector, in the decoding thread), 8 frames ahead (`SCAN_AHEAD`).
Command: `--seconds 20 60 --repeat 2`; predict's wall time leaves out loading the model (0.4-0.5 s, once per command):

    command        size seconds frames  wall s     fps    x real  peak MB
    prepare     176x144      20    500  1.9-2.3 216-257  8.6-10.3      830
    predict     176x144      20    500  2.1-2.2 229-240  9.2-9.6  928-930
    prepare     176x144      60   1500  5.9-6.1 244-255  9.8-10.2  830-831
    predict     176x144      60   1500  6.3-6.5 230-236  9.2-9.5  931-932
    prepare   1440x1080      20    500  6.8-7.1   70-74   2.8-3.0  866-874
    predict   1440x1080      20    500  7.2-7.7   65-69   2.6-2.8  963-964
    prepare   1440x1080      60   1500 22.9-25.3  59-66   2.4-2.6  870-874
    predict   1440x1080      60   1500 25.7-26.8  56-58   2.2-2.3  961-967

Peak memory is flat in length: 866-874 MB for prepare and 961-967 MB for predict at 1440x1080, 20 s and 60 s. A 180 s
HD file (the same writer; `prepare_video`/`predict` in one process each, imports counted) peaked at 836, 842, 842 MB
(prepare) and 958, 972, 975 MB (predict) for 20, 60 and 180 s, at 2.7x real time for both. Before this pass the
same command gave 1.8-1.9x (prepare) and 1.7-1.9x (predict) on the 60 s HD file; run back to back with the previous
commit on the same file (a `git worktree` on `PYTHONPATH`), prepare went from 31.3 s to 20.2 s and predict from 27.1 s
to 22.7 s. Why: converting a whole 1440 x 1080 frame to RGB costs about as much as decoding it (3-5 ms), and the old
scan converted every frame at 640 pixels, the old second pass every frame at the crop size; a face crop read from the
planes costs about 2 ms, a 64-pixel thumbnail through FFmpeg about 2 ms. Where the time goes now: decoding twice (about
11 s of CPU without deblocking for the scan, 15 s with it for the crops), the Haar cascade (about 6 s of whole-frame
searches at 80-90 ms each, 4 s of searches near a known face), JPEG encoding (prepare, about 3 s). Thumbnails read from
the planes (a third of FFmpeg's cost) made the peak memory grow with length (850, 883, 906 MB at 20, 60, 180 s), so
the scan keeps FFmpeg's.
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
