"Data: sampling, both decoders, annotation formats, every bad input, the generator's determinism, the shipped set."
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from a3lign_nb.data import datasets as D
from a3lign_nb.data import synth as S
from a3lign_nb.data import video as V
from a3lign_nb.utils import REPO_SAMPLES


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    "A tiny synthetic set (2 train + 1 test clip per class, 32 px)."
    out = tmp_path_factory.mktemp('synth') / 'tiny'
    S.write_synthetic_dataset(out, 2, 1, size=32, num_frames=(10, 20), seed=3, progress=False)
    return out


def _folder(root: Path, name: str, n: int, size=16):
    d = root / name
    d.mkdir(parents=True, exist_ok=True)
    for i in range(1, n + 1): Image.new('RGB', (size, size), (5 * i, 60, 90)).save(d / f'{i}.png')
    return d


# ---------------------------------------------------------------- sampling
@pytest.mark.parametrize('n', [1, 3, 15, 16, 17, 31, 68, 750])
def test_sampling_test_mode_is_middle_of_segments(n):
    idx = V.sample_indices(n, 16, train=False)
    edges = np.arange(17) * n // 16
    assert idx.shape == (16,) and idx.dtype == np.int64
    assert (np.diff(idx) >= 0).all() and idx.min() >= 0 and idx.max() <= n - 1
    # segment x spans [x*n/16, (x+1)*n/16) in frame units; the test frame is the one under its centre
    lo, hi, mid = np.arange(16) * n / 16, np.arange(1, 17) * n / 16, (np.arange(16) + 0.5) * n / 16
    assert ((idx >= np.floor(lo)) & (idx < np.ceil(hi))).all()  # a frame the segment overlaps
    assert ((idx <= mid) & (mid < idx + 1)).all()  # frame idx covers [idx, idx+1) and holds the centre
    if n >= 16: assert ((idx >= edges[:-1]) & (idx <= edges[1:])).all()
    np.testing.assert_array_equal(idx, V.sample_indices(n, 16))  # deterministic


def _tsn_test_indices(n, S=16):
    "TSN / DFER-CLIP's test-time offsets, verbatim: `int(tick/2 + tick*x)`, `tick = n / S`."
    tick = n / float(S)
    return [int(tick / 2.0 + tick * x) for x in range(S)]


@pytest.mark.parametrize('S', [8, 16])
def test_sampling_test_mode_matches_tsn(S):
    for n in range(1, 400):
        assert V.sample_indices(n, S).tolist() == _tsn_test_indices(n, S), n
    assert V.sample_indices(32, 16).tolist() == list(range(1, 32, 2))  # 1, 3, ..., 31; not 0, 2, ..., 30
    assert V.sample_indices(160, 16).tolist()[:3] == [5, 15, 25]


def test_sampling_train_is_random_within_segments():
    rng = np.random.default_rng(0)
    draws = np.stack([V.sample_indices(64, 16, train=True, rng=rng) for _ in range(200)])
    edges = np.arange(17) * 64 // 16
    assert ((draws >= edges[:-1]) & (draws < edges[1:])).all()
    assert all(len(np.unique(draws[:, s])) == 4 for s in range(16))  # every frame of each 4-frame segment is drawn
    a = V.sample_indices(64, 16, train=True, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(a, V.sample_indices(64, 16, train=True, rng=np.random.default_rng(5)))


def test_sampling_short_clip_repeats_frames():
    idx = V.sample_indices(5, 16)
    assert idx.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 4, 4, 4]  # in order, spread evenly
    for n in range(1, 16):  # every frame of a short clip is used, in order, in both modes
        for train in (False, True):
            i = V.sample_indices(n, 16, train=train, rng=np.random.default_rng(n))
            assert sorted(set(i.tolist())) == list(range(n)) and (np.diff(i) >= 0).all(), (n, train)
    np.testing.assert_array_equal(V.sample_indices(1, 16), np.zeros(16))
    with pytest.raises(ValueError, match='num_frames must be > 0'): V.sample_indices(0)


# ---------------------------------------------------------------- readers
def test_readers_agree(tiny):
    rec = D.read_annotations(tiny / 'train.txt', spec='synthetic')[3]
    idx = V.sample_indices(rec.num_frames, 16)
    a = V.read_frames(rec.path, idx, backend='pyav')
    assert a.shape == (16, 32, 32, 3) and a.dtype == np.uint8
    if V.HAS_DECORD:
        b = V.read_frames(rec.path, idx, backend='decord')
        assert np.abs(a.astype(int) - b).max() <= 3  # same frames within codec/colour-conversion tolerance
        assert V.count_frames(rec.path, 'decord') == V.count_frames(rec.path, 'pyav') == rec.num_frames
    np.testing.assert_array_equal(V.read_frames(rec.path, idx, backend='auto'), V.read_frames(rec.path, idx))


def test_readers_refuse_past_the_end(tiny):
    "Issue 11: an index past the clip's end (an over-counting list line) is a named error, never a copy of the last frame."
    rec = D.read_annotations(tiny / 'train.txt', spec='synthetic')[3]
    n = rec.num_frames
    allf = V.read_frames(rec.path, range(n), backend='pyav')
    for be in ['pyav', 'auto'] + (['decord'] if V.HAS_DECORD else []):
        np.testing.assert_allclose(V.read_frames(rec.path, [n - 1, 0], backend=be), allf[[n - 1, 0]], atol=3)
        for idx in ([5, n + 16], [n + 3, n + 9], [n - 1, n]):
            with pytest.raises(V.VideoReadError, match=f'frame {max(idx)} was asked for'): V.read_frames(rec.path, idx, backend=be)


def test_frame_folder_matches_video(tiny, tmp_path):
    rec = D.read_annotations(tiny / 'test.txt')[0]
    allf = V.read_frames(rec.path, range(rec.num_frames), backend='pyav')
    d = tmp_path / 'frames'; d.mkdir()
    for i, f in enumerate(allf, 1): Image.fromarray(f).save(d / f'{rec.path.stem}_{i:05d}.png')
    idx = V.sample_indices(rec.num_frames, 16)
    np.testing.assert_array_equal(V.read_frames(d, idx), allf[idx])
    assert V.count_frames(d) == rec.num_frames


def test_pyav_fallback_when_decord_fails(tiny, monkeypatch):
    rec = D.read_annotations(tiny / 'train.txt')[0]
    def broken(path): raise V.VideoReadError(path, 'decord cannot open it: simulated')
    monkeypatch.setattr(V, '_decord_reader', broken)
    a = V.read_frames(rec.path, [0, 1, 2])  # 'auto' falls back to PyAV
    assert a.shape[0] == 3
    assert V.count_frames(rec.path) == rec.num_frames
    monkeypatch.setattr(V, 'HAS_DECORD', False)
    assert V.read_frames(rec.path, [0]).shape[0] == 1


def test_transform_shapes_and_clip_consistency():
    x = np.random.default_rng(0).integers(0, 256, (1, 40, 50, 3), dtype=np.uint8).repeat(6, 0)
    y = V.ClipTransform(24, train=True)(x, np.random.default_rng(0))
    assert y.shape == (6, 3, 24, 24) and y.dtype == torch.float32
    assert (y - y[:1]).abs().max() == 0
    assert V.ClipTransform(112, resize_to=120)(x).shape == (6, 3, 112, 112)
    with pytest.raises(ValueError, match='resize_to'): V.ClipTransform(112, resize_to=100)


# ---------------------------------------------------------------- annotation formats
def test_both_annotation_formats_and_data_root(tmp_path):
    root = tmp_path / 'data'
    _folder(root, 'a', 20); _folder(root, 'b', 7)
    lst = tmp_path / 'lists' / 'l.txt'; lst.parent.mkdir()
    lst.write_text('a 20 3\nb 7 1\n')
    recs = D.read_annotations(lst, data_root=root, spec='dfew')
    assert [(r.path, r.num_frames, r.label) for r in recs] == [(root / 'a', 20, 3), (root / 'b', 7, 1)]
    assert recs[1].source == f'{lst}:2'
    lst.write_text('a 3\nb 1\n')  # the other format (one per file): frames counted
    recs = D.read_annotations(lst, data_root=root, spec='dfew')
    assert [(r.path, r.num_frames, r.label) for r in recs] == [(root / 'a', 20, 3), (root / 'b', 7, 1)]
    lst.write_text(f'{root / "a"} 20 10\n')  # absolute path; label 10 fine for MAFW
    assert D.read_annotations(lst, spec='mafw')[0].label == 10


def test_two_field_list_of_videos_counts_frames(tiny, tmp_path):
    lines = (tiny / 'train.txt').read_text().splitlines()
    two = tmp_path / 'two.txt'
    two.write_text(''.join(f'{tiny / p} {lab}\n' for p, n, lab in (l.split() for l in lines)))
    assert [r.num_frames for r in D.read_annotations(two)] == [int(l.split()[1]) for l in lines]


def test_dfew_csv_conversion(tmp_path):
    frames = tmp_path / 'Clip' / 'clip_224x224'
    _folder(frames, '00001', 12); _folder(frames, '00042', 30)
    csvf = tmp_path / 'set_1.csv'
    csvf.write_text('video_name,label\n1,1\n42,7\n')
    D.dfew_csv_to_list(csvf, tmp_path / 'train_1.txt', frames)
    assert (tmp_path / 'train_1.txt').read_text() == 'Clip/clip_224x224/00001 12 0\nClip/clip_224x224/00042 30 6\n'
    assert [r.label for r in D.read_annotations(tmp_path / 'train_1.txt', spec='dfew')] == [0, 6]
    csvf.write_text('video_name,label\n1,0\n')
    with pytest.raises(D.AnnotationError, match=r'set_1.csv:2: label 0'): D.dfew_csv_to_list(csvf, tmp_path / 'x.txt', frames)
    csvf.write_text('name,emotion\n1,1\n')
    with pytest.raises(D.AnnotationError, match='video_name,label'): D.dfew_csv_to_list(csvf, tmp_path / 'x.txt', frames)


# ---------------------------------------------------------------- bad input: raise with file:line, or skip and count
@pytest.fixture
def bad_world(tmp_path, tiny):
    root = tmp_path
    _folder(root, 'good', 20)
    (root / 'emptydir').mkdir()
    (root / 'zero.mp4').write_bytes(b'')
    (root / 'corrupt.mp4').write_bytes(os.urandom(3000))
    # a valid mp4 container with no frames
    import av
    with av.open(str(root / 'noframes.mp4'), 'w') as c:
        s = c.add_stream('libx264', rate=25); s.width = s.height = 16; s.pix_fmt = 'yuv420p'
    return root


BAD_LINES = {
    'missing': ('nothere.mp4 20 1', 'not found'),
    'zero-byte': ('zero.mp4 20 1', 'zero-byte'),
    'empty folder': ('emptydir 20 1', 'empty frame folder'),
    'malformed': ('good twenty one', 'malformed line'),
    'label outside': ('good 20 7', 'label 7 is outside 0..6'),
    'negative label': ('good 20 -1', 'outside'),
    'corrupt, no count': ('corrupt.mp4 2', 'corrupt.mp4'),
    'no frames, no count': ('noframes.mp4 2', 'noframes.mp4'),
    'missing field': ('good 2', 'a field is missing'),  # in a 3-field list, never re-read as label 2
    'word for frames': ('good sixty 2', "frame count 'sixty' is not an integer"),
}


@pytest.mark.parametrize('case', list(BAD_LINES))
def test_bad_annotation_line_raises_with_file_and_line(bad_world, case):
    line, msg = BAD_LINES[case]
    lst = bad_world / 'list.txt'
    first = 'good 0' if 'no count' in case else 'good 20 0'  # a list of the bad line's own format
    lst.write_text(f'{first}\n{line}\n')
    with pytest.raises(D.AnnotationError) as e: D.read_annotations(lst, spec='dfew')
    assert f'{lst}:2' in str(e.value) and msg in str(e.value)


def test_bad_lines_skipped_and_counted(bad_world):
    lst = bad_world / 'list.txt'
    lst.write_text('good 20 0\n' + '\n'.join(l for l, _ in BAD_LINES.values()) + '\n')
    with pytest.warns(UserWarning, match='skipp'):
        recs = D.read_annotations(lst, spec='dfew', skip_bad=True)
    assert len(recs) == 1 and len(recs.skipped) == len(BAD_LINES)
    assert [s for s, _ in recs.skipped] == [f'{lst}:{i}' for i in range(2, 2 + len(BAD_LINES))]
    ds = D.ClipDataset(recs, transform=V.ClipTransform(16))
    assert f'{len(BAD_LINES)} skipped' in ds.summary()


@pytest.mark.parametrize('name', ['corrupt.mp4', 'noframes.mp4', 'zero.mp4'])
def test_bad_video_at_load_time_names_the_clip(bad_world, name):
    lst = bad_world / 'list.txt'
    lst.write_text(f'good 20 0\n{name} 20 2\n')
    recs = D.read_annotations(lst, check_files=False)  # the clip breaks only when decoded
    ds = D.ClipDataset(recs, transform=V.ClipTransform(16))
    with pytest.raises(D.ClipLoadError, match=f'list.txt:2: cannot load clip .*{name}'): ds[1]
    for backend in ['pyav'] + (['decord'] if V.HAS_DECORD else []):
        with pytest.raises(V.VideoReadError, match=name): V.read_frames(bad_world / name, [0], backend=backend)


def test_error_in_worker_carries_the_clip_path(bad_world):
    lst = bad_world / 'list.txt'
    lst.write_text('good 20 0\ncorrupt.mp4 20 2\n')
    ds = D.ClipDataset(D.read_annotations(lst, check_files=False), transform=V.ClipTransform(16))
    with pytest.raises(Exception, match='corrupt.mp4'):
        for _ in D.make_loader(ds, batch_size=2, shuffle=False, num_workers=1): pass


def test_skip_bad_at_load_time(bad_world):
    lst = bad_world / 'list.txt'
    lst.write_text('good 20 0\ncorrupt.mp4 20 2\ngood 20 4\n')
    ds = D.ClipDataset(D.read_annotations(lst, check_files=False), transform=V.ClipTransform(16), skip_bad=True)
    with pytest.warns(UserWarning, match='corrupt.mp4'):
        b = next(iter(D.make_loader(ds, batch_size=3, shuffle=False)))
    assert b['index'].tolist() == [0, 2, 2] and b['label'].tolist() == [0, 4, 4]  # the next clip stands in
    assert b['skipped'][0] == '' and 'corrupt.mp4' in b['skipped'][1]
    assert len(ds.skipped) == 1 and '1 skipped' in ds.summary()


def test_unknown_dataset_name():
    with pytest.raises(KeyError, match="unknown dataset 'kinetics'"): D.get_spec('kinetics')
    with pytest.raises(KeyError, match='unknown dataset'): D.read_annotations(__file__, spec='kinetics')


def test_registry():
    assert D.get_spec('dfew').classes == ('happiness', 'sadness', 'neutral', 'anger', 'surprise', 'disgust', 'fear')
    assert D.get_spec('dfew').folds == (1, 2, 3, 4, 5) and D.get_spec('ferv39k').folds is None
    assert D.get_spec('mafw').num_classes == 11 and D.get_spec('synthetic').classes == S.SYNTH_CLASSES


# ---------------------------------------------------------------- dataset + loader
def test_dataset_and_loader(tiny):
    recs = D.read_annotations(tiny / 'train.txt', spec='synthetic')
    ds = D.ClipDataset(recs, train=True, transform=V.ClipTransform(24, train=True), seed=1)
    b = next(iter(D.make_loader(ds, batch_size=4, shuffle=True, seed=0)))
    assert b['frames'].shape == (4, 16, 3, 24, 24) and b['label'].dtype == torch.int64
    order = lambda s: [x['index'].tolist() for x in D.make_loader(ds, 4, True, seed=s)]
    assert order(7) == order(7) and order(7) != order(8)
    ds.set_epoch(0); a = ds[0]['frames']; ds.set_epoch(0)
    assert torch.equal(ds[0]['frames'], a)


def test_loader_workers_reproducible(tiny):
    recs = D.read_annotations(tiny / 'train.txt')
    ds = D.ClipDataset(recs, train=True, transform=V.ClipTransform(16, train=True), seed=0)
    run = lambda: torch.cat([b['frames'] for b in D.make_loader(ds, 7, True, num_workers=2, seed=3)])
    assert torch.equal(run(), run())


# ---------------------------------------------------------------- the generator
def test_plan_is_pure_function_of_seed():
    a = S.clip_plan(3, 2, (12, 32), seed=0)
    assert a == S.clip_plan(3, 2, (12, 32), seed=0)
    assert [c['num_frames'] for c in a] != [c['num_frames'] for c in S.clip_plan(3, 2, (12, 32), seed=1)]
    assert [c['label'] for c in a if c['split'] == 'train'] == [l for l in range(7) for _ in range(3)]
    assert S.clip_plan(5, 0)[:2] == S.clip_plan(2, 0)[:2]


def test_generator_deterministic(tmp_path, tiny):
    S.write_synthetic_dataset(tmp_path / 'again', 2, 1, size=32, num_frames=(10, 20), seed=3, progress=False)
    for f in ['train.txt', 'test.txt', 'classes.txt', 'meta.json']:
        assert (tmp_path / 'again' / f).read_text() == (tiny / f).read_text()
    rec = D.read_annotations(tiny / 'train.txt')[5]
    a = V.read_frames(rec.path, range(rec.num_frames), backend='pyav')
    b = V.read_frames(tmp_path / 'again' / rec.path.relative_to(tiny), range(rec.num_frames), backend='pyav')
    # same pictures, within the codec's tolerance (x264 output is not bit-exact from run to run): compare 8x8 block
    # means, where the encoder's noise averages out, and check that another clip is far further away
    block = lambda x: x.astype(float).reshape(len(x), 4, 8, 4, 8, 3).mean((2, 4))
    assert np.abs(block(a) - block(b)).mean() < 3
    other = D.read_annotations(tiny / 'train.txt')[6]
    c = V.read_frames(other.path, np.linspace(0, other.num_frames - 1, len(a)).round().astype(int), backend='pyav')
    assert np.abs(block(a) - block(c)).mean() > 3 * max(np.abs(block(a) - block(b)).mean(), 1)
    np.testing.assert_array_equal(S.render_clip(2, 12, 32, 9), S.render_clip(2, 12, 32, 9))


SHIPPED = dict(n_per_class_train=40, n_per_class_test=12, num_frames=(12, 32), seed=0)


@pytest.mark.skipif(REPO_SAMPLES is None or not (REPO_SAMPLES / 'synthetic' / 'train.txt').exists(),
                    reason='needs a source checkout with data_samples/synthetic')
def test_shipped_set_matches_documented_command():
    root = REPO_SAMPLES / 'synthetic'
    plan = S.clip_plan(**SHIPPED)
    for split in S.SPLITS:
        got = (root / f'{split}.txt').read_text().splitlines()
        assert got == [f"{c['relpath']} {c['num_frames']} {c['label']}" for c in plan if c['split'] == split]
    recs = D.read_annotations(root / 'test.txt', spec='synthetic')
    for r in recs[::20]: assert V.count_frames(r.path) == r.num_frames
    # a few shipped clips re-rendered from their plan seeds match the mp4 (within codec tolerance)
    for c in plan[::97]:
        a = V.read_frames(root / c['relpath'], range(c['num_frames']), backend='pyav')
        b = S.render_clip(c['label'], c['num_frames'], 64, np.random.default_rng(c['seed']))
        block = lambda x: x.reshape(len(x), 8, 8, 8, 8, 3).mean((2, 4))  # 8x8 block means: noise averages out
        assert np.abs(block(a.astype(float)) - block(b.astype(float))).mean() < 3
        other = S.render_clip(c['label'], c['num_frames'], 64, np.random.default_rng(c['seed'][:-1] + [2]))
        assert np.abs(block(a.astype(float)) - block(other.astype(float))).mean() > 10  # the check can fail


# ---------------------------------------------------------------- the time set (`a3lign synth OUT --kind time`)
TIME_SMALL = dict(n_per_class_train=(4, 2, 1, 1, 1, 1), n_per_class_test=(2, 1, 1, 1, 1, 1), size=32, num_frames=(16, 20), seed=3)


def test_time_plan_counts_and_keys():
    plan = S.clip_plan(**S.SYNTH_DEFAULTS['time'], seed=0, kind='time')
    for split in S.SPLITS:
        counts = np.bincount([c['label'] for c in plan if c['split'] == split]).tolist()
        assert counts == list(S.TIME_COUNTS[split]) and min(counts) / max(counts) <= .12  # DFEW-like imbalance
        assert all(16 <= c['num_frames'] <= 32 for c in plan)
    # the time set's clip seeds never coincide with the appearance set's (their key spaces are disjoint)
    app = {tuple(c['seed']) for c in S.clip_plan(**S.SYNTH_DEFAULTS['appearance'], seed=0)}
    assert not app & {tuple(c['seed']) for c in plan}
    with pytest.raises(ValueError, match='6 counts'): S.clip_plan((1, 2), 1, kind='time')
    with pytest.raises(ValueError, match='kind'): S.clip_plan(1, 1, kind='timing')


def test_time_track_same_mix_different_order():
    "Every class: two happy and two sad beats (the same share of frames), in the class's order."
    for label, name in enumerate(S.TIME_CLASSES):
        tr = S.time_track(label, 32, np.random.default_rng(label))
        beats = ''.join('H' if tr['happiness'][i * 8 + 2:i * 8 + 6].mean() > tr['sadness'][i * 8 + 2:i * 8 + 6].mean() else 'S'
                        for i in range(4))
        assert beats == S.TIME_PATTERNS[name] and sorted(beats) == list('HHSS')
        assert abs(tr['happiness'].mean() - tr['sadness'].mean()) < .12
        assert tr['phase'].max() > .9  # a strong apex


def test_time_generator_deterministic(tmp_path):
    for d in ('a', 'b'): S.write_synthetic_dataset(tmp_path / d, progress=False, kind='time', **TIME_SMALL)
    for f in ['train.txt', 'test.txt', 'classes.txt', 'meta.json']:
        assert (tmp_path / 'a' / f).read_text() == (tmp_path / 'b' / f).read_text()
    assert (tmp_path / 'a' / 'classes.txt').read_text().split() == list(S.TIME_CLASSES)
    recs = D.read_annotations(tmp_path / 'a' / 'train.txt', spec='synthetic-time')
    assert [r.label for r in recs] == [0, 0, 0, 0, 1, 1, 2, 3, 4, 5]
    a = V.read_frames(recs[5].path, range(recs[5].num_frames), backend='pyav')
    b = V.read_frames(tmp_path / 'b' / recs[5].path.relative_to(tmp_path / 'a'), range(recs[5].num_frames), backend='pyav')
    block = lambda x: x.astype(float).reshape(len(x), 4, 8, 4, 8, 3).mean((2, 4))
    assert np.abs(block(a) - block(b)).mean() < 3
    np.testing.assert_array_equal(S.render_clip(2, 16, 32, 9, kind='time'), S.render_clip(2, 16, 32, 9, kind='time'))
    assert np.abs(S.render_clip(2, 16, 32, 9, kind='time').astype(int) - S.render_clip(2, 16, 32, 9)).mean() > 1


def test_time_spec_registered():
    spec = D.get_spec('synthetic-time')
    assert spec.classes == S.TIME_CLASSES and spec.folds is None and D.get_spec('synthetic_time') is spec
    assert D.get_spec('synthetic').classes == S.SYNTH_CLASSES  # the appearance set is untouched


def test_cli_synth_kind_time(tmp_path):
    from a3lign_nb.cli import build_parser, synth
    a = build_parser().parse_args(['synth', str(tmp_path / 'x'), '--kind', 'time', '--train-per-class', '2,1,1,1,1,1'])
    assert a.kind == 'time' and a.train_per_class == (2, 1, 1, 1, 1, 1) and a.test_per_class is None
    assert build_parser().parse_args(['synth', 'x']).kind == 'appearance'
    info = synth(str(tmp_path / 'x'), (2, 1, 1, 1, 1, 1), 1, size=32, min_frames=16, max_frames=16, progress=False, kind='time')
    assert (info['train'], info['test']) == (7, 6)
    assert '--kind time --train-per-class 2,1,1,1,1,1 --test-per-class 1 ' in (tmp_path / 'x' / 'meta.json').read_text()


@pytest.mark.skipif(REPO_SAMPLES is None or not (REPO_SAMPLES / 'synthetic_time' / 'train.txt').exists(),
                    reason='needs a source checkout with data_samples/synthetic_time')
def test_shipped_time_set_matches_documented_command(tmp_path):
    root = REPO_SAMPLES / 'synthetic_time'
    plan = S.clip_plan(**S.SYNTH_DEFAULTS['time'], seed=0, kind='time')
    for split in S.SPLITS:
        got = (root / f'{split}.txt').read_text().splitlines()
        assert got == [f"{c['relpath']} {c['num_frames']} {c['label']}" for c in plan if c['split'] == split]
    import json
    meta = json.loads((root / 'meta.json').read_text())
    assert meta['kind'] == 'time' and meta['classes'] == list(S.TIME_CLASSES)
    assert meta['command'].startswith('a3lign synth <out_dir> --kind time --train-per-class 110,70,48,32,20,11 ')
    assert sum(f.stat().st_size for f in (root / 'clips').glob('*.mp4')) < 4e6  # a few MB at most
    recs = D.read_annotations(root / 'test.txt', spec='synthetic-time')
    for r in recs[::25]: assert V.count_frames(r.path) == r.num_frames
    for c in plan[::131]:  # re-rendered from the plan seeds: the mp4 holds these frames (within codec tolerance)
        a = V.read_frames(root / c['relpath'], range(c['num_frames']), backend='pyav')
        b = S.render_clip(c['label'], c['num_frames'], 64, np.random.default_rng(c['seed']), kind='time')
        block = lambda x: x.reshape(len(x), 8, 8, 8, 8, 3).mean((2, 4))
        assert np.abs(block(a.astype(float)) - block(b.astype(float))).mean() < 3


def test_appearance_meta_unchanged_by_kinds(tiny):
    "The appearance set's meta.json keeps its old form (no 'kind', no --kind), so data_samples/synthetic regenerates as shipped."
    import json
    meta = json.loads((tiny / 'meta.json').read_text())
    assert 'kind' not in meta and meta['command'].startswith('a3lign synth <out_dir> --train-per-class 2 --test-per-class 1 ')
    shipped = REPO_SAMPLES / 'synthetic' / 'meta.json' if REPO_SAMPLES is not None else None
    if shipped is not None and shipped.exists():
        m = json.loads(shipped.read_text())
        d = S.SYNTH_DEFAULTS['appearance']
        assert (m['n_per_class_train'], m['n_per_class_test'], tuple(m['num_frames'])) == (d['n_per_class_train'], d['n_per_class_test'], d['num_frames'])
