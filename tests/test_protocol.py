"The data protocols: index tables from each protocol's definition, cached == uncached frames, transforms, specs, cache key."
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from a3lign_nb.data import datasets as D
from a3lign_nb.data import video as V
from a3lign_nb import factory
from a3lign_nb.train.config import TrainConfig
from a3lign_nb.backbone import make_backbone
from a3lign_nb.data.datasets import VideoClipDataset
from a3lign_nb.data.video import cache_positions, cached_frame_indices, protocol_frames
from a3lign_nb.train.cache import CacheMismatchError, CachedClipDataset, ensure_cache, weights_dtype


# ---------------------------------------------------------------- the definitions, written out
def dfer_clip_test(n, S=16):
    "DFER-CLIP test frames: n > S: int(tick/2 + tick*x), tick = n/S; else 0..n-1 then the last frame repeated."
    if n > S:
        tick = n / float(S)
        return [int(tick / 2.0 + tick * x) for x in range(S)]
    return list(range(n)) + [n - 1] * (S - n)


def dfer_clip_train_choices(n, S=16):
    "DFER-CLIP training: a = n // S > 0: segment x takes x*a + [0, a); else the test padding (no randomness)."
    a = n // S
    if a > 0: return [set(range(x * a, x * a + a)) for x in range(S)]
    return [{i} for i in dfer_clip_test(n, S)]


def tsn_test(n, S=16):
    "Our 'tsn': int(tick/2 + tick*x) for every n (a short clip repeats frames spread evenly)."
    tick = n / float(S)
    return [int(tick / 2.0 + tick * x) for x in range(S)]


def tsn_train_choices(n, S=16):
    "Our 'tsn' training: segment x spans [x*n//S, max((x+1)*n//S, x*n//S + 1))."
    e = [x * n // S for x in range(S + 1)]
    return [set(range(e[x], max(e[x + 1], e[x] + 1))) for x in range(S)]


@pytest.mark.parametrize('protocol,test_def', [('dfer-clip', dfer_clip_test), ('tsn', tsn_test)])
def test_test_frames_match_definition(protocol, test_def):
    for n in range(1, 401):
        assert V.sample_indices(n, 16, protocol=protocol).tolist() == test_def(n), (protocol, n)
    assert V.sample_indices(4, 16, protocol='dfer-clip').tolist() == [0, 1, 2, 3] + [3] * 12


@pytest.mark.parametrize('protocol,choices', [('dfer-clip', dfer_clip_train_choices), ('tsn', tsn_train_choices)])
def test_train_frames_match_definition(protocol, choices):
    rng = np.random.default_rng(0)
    for n in range(1, 401):
        ch = choices(n)
        draws = np.stack([V.sample_indices(n, 16, train=True, rng=rng, protocol=protocol) for _ in range(60)])  # [60, 16]
        for x in range(16):
            got = set(draws[:, x].tolist())
            assert got <= ch[x], (protocol, n, x, got, ch[x])
            if len(ch[x]) <= 3: assert got == ch[x], (protocol, n, x)  # small segments: every choice is drawn
    # 16 <= n < 32 always trains on frames 0..15 under 'dfer-clip'; the last n mod 16 frames are never used
    assert V.sample_indices(31, 16, train=True, rng=rng, protocol='dfer-clip').tolist() == list(range(16))
    assert max(V.sample_indices(47, 16, train=True, rng=np.random.default_rng(s), protocol='dfer-clip').max() for s in range(50)) == 31


def test_protocols_differ_where_stated():
    differ = sum(tsn_train_choices(n) != dfer_clip_train_choices(n) or tsn_test(n) != dfer_clip_test(n) for n in range(1, 401))
    assert differ == 374
    with pytest.raises(ValueError, match='unknown protocol'): V.sample_indices(10, protocol='i3d')


# ---------------------------------------------------------------- the cache never moves a frame
@pytest.mark.parametrize('protocol', ['dfer-clip', 'tsn'])
def test_cached_test_frames_equal_uncached(protocol):
    for n in range(1, 2001):
        want = V.sample_indices(n, 16, protocol=protocol)
        for cap in (None, 64, 50):
            idx = cached_frame_indices(n, cap, protocol)
            assert (np.diff(idx) > 0).all()
            assert np.array_equal(idx[cache_positions(want, idx)], want), (protocol, n, cap)
        full = cached_frame_indices(n, None, protocol)
        assert np.isin(protocol_frames(n, protocol), full).all()  # every frame training can pick is cached
        if protocol == 'tsn': assert len(cached_frame_indices(n, 64, protocol)) == min(n, 64)  # on the k*n//64 grid


def _folder(root: Path, name: str, n: int, size=12):
    d = root/name; d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(n)
    for i in range(n): Image.fromarray(rng.integers(0, 256, (size, size + 4, 3), dtype=np.uint8)).save(d/f'{i:04d}.png')
    return d


def test_cached_dataset_equals_video_dataset(tmp_path):
    "Long and short frame folders, 'dfer-clip': the cache and the video path draw the same frames, test and train."
    for n in (5, 20, 70, 131): _folder(tmp_path, f'c{n}', n)
    (tmp_path/'list.txt').write_text(''.join(f'c{n} {n} {i % 7}\n' for i, n in enumerate((5, 20, 70, 131))))
    recs = list(D.read_annotations(tmp_path/'list.txt', spec='dfew'))
    backbone = make_backbone('a3lign-tiny', None, 'cpu', seed=0)
    cfg = TrainConfig(dataset='dfew')
    protocol, tkw = factory.run_protocol(cfg)
    assert (protocol, tkw) == ('dfer-clip', dict(brightness=0.5))
    c = ensure_cache(recs, backbone, tmp_path/'cache', root=tmp_path, progress=False, protocol=protocol, transform_kw=tkw)
    assert c.manifest['key']['protocol'] == 'dfer-clip' and c.manifest['key']['max_frames'] is None
    assert [c.get(i)[1].tolist() for i in range(4)] == [protocol_frames(n, 'dfer-clip').tolist() for n in (5, 20, 70, 131)]
    te = V.clip_transform_for(backbone, False, protocol, **tkw)
    for train in (False, True):
        dc = CachedClipDataset(c, recs, 16, train=train, seed=3, root=tmp_path)
        dv = VideoClipDataset(recs, te, 16, train=train, seed=3, protocol=protocol)
        for e in (0, 4):
            dc.set_epoch(e); dv.set_epoch(e)
            for i in range(len(recs)):
                torch.testing.assert_close(dc[i]['feats'], backbone.encode_images(dv[i]['frames']), atol=2e-3, rtol=2e-3)


# ---------------------------------------------------------------- transforms and specs
def test_dfer_clip_transform():
    from torchvision.transforms.v2 import functional as TF
    backbone = make_backbone('a3lign-tiny', None, 'cpu', seed=0)
    S = backbone.image_size if isinstance(backbone.image_size, int) else backbone.image_size[0]
    x = np.random.default_rng(0).integers(0, 256, (3, 36, 48, 3), dtype=np.uint8)
    y = V.clip_transform_for(backbone, protocol='dfer-clip')(x)  # squash, [0, 1], no mean/std
    torch.testing.assert_close(y, TF.resize(torch.as_tensor(x).permute(0, 3, 1, 2), [S, S], antialias=True).float() / 255)
    t = V.clip_transform_for(backbone, True, 'dfer-clip', rotation=4.0)
    assert t.scale == (0.08, 1.0) and t.flip == 0.5 and t.jitter == 0 and not t.normalize and t.rotation == 4.0
    assert V.clip_transform_for(backbone, False, 'dfer-clip', rotation=4.0).rotation == 0  # training only
    y = t(x, np.random.default_rng(1)); assert y.shape == (3, 3, S, S)
    # the paper's 120 -> 112 crop reaches a backbone of another input size
    t = V.clip_transform_for(backbone, True, 'tsn', resize_to=120, image_size=112)
    assert t(x, np.random.default_rng(0)).shape == (3, 3, S, S)
    assert factory.run_protocol(TrainConfig(dataset='dfew', resize_to=120, crop_size=112))[1] == dict(brightness=0.5, resize_to=120, image_size=112)


def test_dataset_default_protocols():
    assert {k: D.get_spec(k).protocol for k in ('dfew', 'ferv39k', 'mafw', 'synthetic')} == \
        dict(dfew='dfer-clip', ferv39k='dfer-clip', mafw='dfer-clip', synthetic='tsn')
    assert factory.run_protocol(TrainConfig(dataset='ferv39k')) == ('dfer-clip', dict(rotation=4.0))
    assert factory.run_protocol(TrainConfig(dataset='mafw')) == ('dfer-clip', {})
    assert factory.run_protocol(TrainConfig(dataset='dfew', protocol='tsn')) == ('tsn', {})  # no dfer-clip brightness
    assert factory.run_protocol(TrainConfig()) == ('tsn', {})


# ---------------------------------------------------------------- the cache key
def test_cache_key_dtype_and_file_stamps(tmp_path):
    _folder(tmp_path, 'a', 20); _folder(tmp_path, 'b', 18)
    (tmp_path/'list.txt').write_text('a 20 0\nb 18 1\n')
    recs = list(D.read_annotations(tmp_path/'list.txt'))
    backbone = make_backbone('a3lign-tiny', None, 'cpu', seed=0)
    c = ensure_cache(recs, backbone, tmp_path/'c', root=tmp_path, progress=False)
    assert c.manifest['key']['decoder'].startswith('PIL') and c.manifest['key']['model']['weights_dtype'] == 'float32'
    half = make_backbone('a3lign-tiny', None, 'cpu', seed=0, precision='fp16')
    assert weights_dtype(half) == 'float16'
    with pytest.raises(CacheMismatchError, match='weights_dtype'):
        ensure_cache(recs, half, tmp_path/'c', root=tmp_path, progress=False)
    (tmp_path/'b'/'0017.png').unlink(); _folder(tmp_path, 'b', 18)  # the folder rewritten after the build
    st = os.stat(tmp_path/'b'); os.utime(tmp_path/'b', ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    with pytest.raises(CacheMismatchError, match="clip 'b'.*changed on disk"):
        ensure_cache(recs, backbone, tmp_path/'c', root=tmp_path, progress=False)


def test_path_map_in_training_lists(tmp_path):
    _folder(tmp_path/'data', 'a', 20); _folder(tmp_path/'data', 'b', 18)
    for s in ('train', 'test'): (tmp_path/f'{s}.txt').write_text('/peer/DFEW/a 20 0\n/peer/DFEW/b 18 1\n')
    cfg = TrainConfig(dataset='dfew', train_list=str(tmp_path/'train.txt'), test_list=str(tmp_path/'test.txt'))
    with pytest.raises(D.AnnotationError, match='train.txt:1: /peer/DFEW/a not found'): factory.read_lists(cfg)
    cfg.path_map = {'/peer/DFEW': str(tmp_path/'data')}
    _, tr, ts, _ = factory.read_lists(cfg)
    assert [r.path for r in tr] == [tmp_path/'data'/'a', tmp_path/'data'/'b']


def test_short_folder_is_counted_never_silent(tmp_path):
    "A folder with fewer frames than its list line: an error naming the line, or skipped and counted with skip_bad."
    from a3lign_nb.data.datasets import ClipLoadError
    _folder(tmp_path, 'a', 20); _folder(tmp_path, 'b', 12)
    (tmp_path/'list.txt').write_text('a 20 0\nb 20 1\n')  # b: the list says 20, the folder holds 12
    recs = list(D.read_annotations(tmp_path/'list.txt'))
    backbone = make_backbone('a3lign-tiny', None, 'cpu', seed=0)
    with pytest.raises(ClipLoadError, match=r'list.txt:2: .*the folder has 12 frames, the list says 20'):
        ensure_cache(recs, backbone, tmp_path/'c', root=tmp_path, progress=False)
    with pytest.warns(UserWarning, match='1 unreadable clip'):
        c = ensure_cache(recs, backbone, tmp_path/'c2', root=tmp_path, progress=False, skip_bad=True)
    assert [src for _, src, _ in c.manifest['skipped']] == [f'{tmp_path/"list.txt"}:2']
    v = VideoClipDataset(recs, V.clip_transform_for(backbone), 16)
    with pytest.raises(ClipLoadError, match='the folder has 12 frames'): v[1]
