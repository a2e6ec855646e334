"Fuzz: generated bad list files and damaged video files give a named error or a counted skip, never a traceback from deep inside, never a silently wrong result."
import warnings

import numpy as np
import pytest
from PIL import Image

from a3lign_nb.data import datasets as D
from a3lign_nb.data import video as V

N_LISTS, N_VIDEOS = 200, 160  # generated cases (each test runs in seconds on a CPU)


# ---------------------------------------------------------------- list files
@pytest.fixture(scope='module')
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp('fuzzlists')
    for k in range(6):
        d = root/f'clip{k}'; d.mkdir()
        for i in range(1, 4 + k): Image.new('RGB', (8, 8), (20 * i, 0, 0)).save(d/f'{i}.png')
    return root


def _mutate(rng, path, nf, lab, columns, spec):
    "A bad line made from a good one, and why it is bad."
    kind = rng.choice(['drop_frames', 'drop_label', 'word', 'float', 'label_range', 'negative', 'missing_path', 'only_path',
                       'extra'] if columns == 3 else ['drop_label', 'word', 'float', 'label_range', 'negative', 'missing_path'])
    if kind == 'drop_frames': return f'{path} {lab}'
    if kind == 'drop_label': return f'{path} {nf}' if columns == 3 else f'{path}'
    if kind == 'word': return f'{path} sixty {lab}' if columns == 3 else f'{path} happy'
    if kind == 'float': return f'{path} {nf}.5 {lab}' if columns == 3 else f'{path} {lab}.0'
    if kind == 'label_range': lab = spec.num_classes + int(rng.integers(0, 5))
    if kind == 'negative': lab = -1 - int(rng.integers(0, 3))
    if kind == 'missing_path': path = f'nothere{int(rng.integers(100))}'
    if kind == 'only_path': return path
    if kind == 'extra': return f'{path} {nf} {lab} {lab}'
    return f'{path} {nf} {lab}' if columns == 3 else f'{path} {lab}'


def test_fuzz_list_files(world, tmp_path):
    rng = np.random.default_rng(11)
    for case in range(N_LISTS):
        spec = D.get_spec(str(rng.choice(['dfew', 'mafw', 'ferv39k'])))
        columns = int(rng.choice([2, 3]))
        n = int(rng.integers(3, 9))
        bad_at = set(rng.choice(n, size=int(rng.integers(1, (n - 1) // 2 + 1)), replace=False).tolist())  # good lines stay the majority
        lines, want = [], []
        for i in range(n):
            k = int(rng.integers(6)); path, nf, lab = f'clip{k}', 3 + k, int(rng.integers(spec.num_classes))
            if i in bad_at: lines.append(_mutate(rng, path, nf, lab, columns, spec))
            else:
                lines.append(f'{path} {nf} {lab}' if columns == 3 else f'{path} {lab}')
                want.append((world/path, nf, lab, i + 1))
        lst = tmp_path/f'l{case}.txt'
        lst.write_text('\n'.join(lines) + '\n')
        with pytest.raises(D.AnnotationError) as e: D.read_annotations(lst, data_root=world, spec=spec)
        assert str(e.value).startswith(f'{lst}:{min(bad_at) + 1}: '), (lines, str(e.value))  # the first bad line, named
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            got = D.read_annotations(lst, data_root=world, spec=spec, skip_bad=True)
        assert [(r.path, r.num_frames, r.label, int(r.source.rsplit(':', 1)[1])) for r in got] == want, lines  # nothing wrong kept
        assert [s for s, _ in got.skipped] == [f'{lst}:{i + 1}' for i in sorted(bad_at)], lines  # every bad line counted


def test_fuzz_list_bytes(tmp_path):
    "Random bytes and random token soup: an AnnotationError naming the file, or records that obey the spec."
    rng = np.random.default_rng(12)
    toks = ['a', '1', '-3', '7', '1e3', '0x10', '', '\t', 'é', '99999999999999999999', '#', 'clip0', '/abs/x', '..']
    for case in range(N_LISTS // 2):
        lst = tmp_path/f'b{case}.txt'
        if case % 2: lst.write_bytes(rng.bytes(int(rng.integers(1, 200))))
        else: lst.write_text('\n'.join(' '.join(rng.choice(toks, size=int(rng.integers(0, 5)))) for _ in range(int(rng.integers(1, 6)))))
        try: recs = D.read_annotations(lst, data_root=tmp_path, spec='dfew')
        except D.AnnotationError as e: assert str(e).startswith(str(lst)), str(e)
        else:
            for r in recs: assert r.path.exists() and r.num_frames > 0 and 0 <= r.label < 7


# ---------------------------------------------------------------- video headers and truncation
def _write(path, n=16, size=32, faststart=False):
    import av
    with av.open(str(path), 'w', options={'movflags': 'faststart'} if faststart else {}) as c:
        s = c.add_stream('libx264', rate=25, options={'crf': '18'})
        s.width = s.height = size; s.pix_fmt = 'yuv420p'
        for i in range(n):
            img = np.full((size, size, 3), 10 * i, np.uint8); img[:, (2 * i) % size] = 255
            for p in s.encode(av.VideoFrame.from_ndarray(img, format='rgb24')): c.mux(p)
        for p in s.encode(): c.mux(p)
    return path


@pytest.fixture(scope='module')
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp('fuzzvid')
    out = []
    for fs in (False, True):
        p = _write(d/f'v{int(fs)}.mp4', faststart=fs)
        out.append((p.read_bytes(), V.read_frames(p, range(16), backend='pyav')))
    return out


def test_fuzz_video_files(videos, tmp_path):
    rng = np.random.default_rng(13)
    backends = ['pyav', 'auto'] + (['decord'] if V.HAS_DECORD else [])
    outcomes = {'error': 0, 'read': 0}
    for case in range(N_VIDEOS):
        blob, frames = videos[case % 2]
        b = bytearray(blob)
        kind = ['truncate', 'header', 'zeros', 'junk'][case % 4]
        if kind == 'truncate': b = b[:int(rng.integers(1, len(b)))]
        elif kind == 'header':  # flip bytes among the first 2 kB (ftyp, moov: the header decoders trust)
            for j in rng.integers(0, min(2048, len(b)), size=int(rng.integers(1, 8))): b[j] = int(rng.integers(256))
        elif kind == 'zeros':
            a, L = int(rng.integers(0, len(b))), int(rng.integers(1, 400))
            b[a:a + L] = bytes(len(b[a:a + L]))
        else: b = b[:int(rng.integers(0, len(b)))] + rng.bytes(int(rng.integers(1, 300)))
        p = tmp_path/f'f{case}.mp4'; p.write_bytes(bytes(b))
        be = backends[case % len(backends)]
        try:
            n = V.count_frames(p, backend=be)
            assert n > 0
            got = V.read_frames(p, np.arange(n), backend=be)
        except V.VideoReadError as e:
            assert str(p) in str(e); outcomes['error'] += 1
            continue
        outcomes['read'] += 1
        assert got.shape[0] == n and got.dtype == np.uint8 and got.ndim == 4  # every frame asked for, none padded
        if kind == 'truncate' and got.shape[1:] == frames.shape[1:]:  # a prefix of the file: the frames it has are the real ones
            k = min(n, 16)
            assert np.abs(got[:k].astype(int) - frames[:k]).max() <= 3, (case, be)
    print(outcomes)
    assert outcomes['error'] > N_VIDEOS // 4 and outcomes['read'] > 0, outcomes  # both outcomes were exercised
