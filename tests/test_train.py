"Feature cache, training loop (exact resume, cache vs video, validation selection) and metrics on tiny clips, CPU."
import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from a3lign_nb.eval.metrics import uar, war, per_class_recall, confusion_matrix, fold_summary
from a3lign_nb import factory, pipelines
from a3lign_nb.backbone import make_backbone
from a3lign_nb.train import checkpoint
from a3lign_nb.data.datasets import VideoClipDataset
from conftest import tiny_cfg
from a3lign_nb.train.cache import CacheMismatchError, CachedClipDataset, ensure_cache, shard_path


@pytest.fixture
def data(clips):
    "The session's tiny clips (conftest)."
    return clips


def trainable(run_dir):
    sd = load_file(Path(run_dir)/'last.safetensors')
    return {k: v for k, v in sd.items() if '.model.' in k or k.startswith('state.') and 'rng' not in k}


def assert_same_run(a, b):
    wa, wb = load_file(Path(a)/'last.safetensors'), load_file(Path(b)/'last.safetensors')
    assert wa.keys() == wb.keys()
    for k in wa: assert torch.equal(wa[k], wb[k]), k
    la = [{k: v for k, v in r.items() if k != 'epoch_s'} for r in map(json.loads, open(Path(a)/'log.jsonl'))]
    lb = [{k: v for k, v in r.items() if k != 'epoch_s'} for r in map(json.loads, open(Path(b)/'log.jsonl'))]
    assert la == lb
    ea, eb = json.load(open(Path(a)/'eval.json')), json.load(open(Path(b)/'eval.json'))
    assert (ea['war'], ea['uar'], ea['confusion']) == (eb['war'], eb['uar'], eb['confusion'])


# ---------------------------------------------------------------- resume
def test_resume_equals_uninterrupted(data, trained_run, tmp_path):
    full = json.loads((trained_run/'eval.json').read_text())   # the uninterrupted run (conftest: tiny_cfg, the same clips)
    assert 0 <= full['uar'] <= 1 and len(full['confusion']) == 7
    # stop at each stage boundary (text -> image after epoch 1, image -> joint after 2), then rerun the same command
    for stop in (1, 2):
        r = pipelines.train(tiny_cfg(data, tmp_path/f'split{stop}', stop_after=stop))
        assert r['status'] == 'stopped' and r['epochs_done'] == stop
        assert not (tmp_path/f'split{stop}'/'eval.json').exists()
        pipelines.train(tiny_cfg(data, tmp_path/f'split{stop}'))
        assert_same_run(trained_run, tmp_path/f'split{stop}')
    # Ctrl-C in the middle of an epoch: checkpoint at the step boundary, exit; rerun resumes there
    def ctrl_c(epoch, step, batch):
        if epoch == 3 and step == 0: os.kill(os.getpid(), signal.SIGINT)
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # a terminal's Ctrl-C, even when the runner ignores SIGINT
    try:
        with pytest.raises(KeyboardInterrupt):
            pipelines.train(tiny_cfg(data, tmp_path/'int'), batch_hook=ctrl_c)
    finally: signal.signal(signal.SIGINT, before)
    assert (tmp_path/'int'/'checkpoints'/'epoch_003_step_000001.json').exists()
    pipelines.train(tiny_cfg(data, tmp_path/'int'))
    assert_same_run(trained_run, tmp_path/'int')
    assert not list((tmp_path/'int'/'checkpoints').glob('*_step_*'))  # mid-epoch checkpoints are pruned


# ---------------------------------------------------------------- cache
def test_cache_reuse_mismatch_resume(data, tmp_path):
    from a3lign_nb.data.datasets import read_annotations
    recs = list(read_annotations(data/'train.txt')) + list(read_annotations(data/'test.txt'))
    backbone = make_backbone('a3lign-tiny', None, 'cpu', seed=0)
    c = ensure_cache(recs, backbone, tmp_path/'c', root=data, max_frames=16, views=2, shard_size=4, progress=False)
    assert len(c) == len(recs) and c.views == 2
    f, idx = c.get(2)
    # a 16-frame cap on a 70-frame clip: 16 frames spread over the clip plus its 16 exact test frames
    grid = set((np.arange(16) * 70 // 16).tolist()) | set(((2 * np.arange(16) + 1) * 70 // 32).tolist())
    assert f.dtype == torch.float16 and f.shape == (2, len(grid), backbone.embed_dim) and idx.tolist() == sorted(grid)
    shards = sorted((tmp_path/'c'/'shards').glob('*.safetensors'))
    assert len(shards) == 3
    stamp = {p: p.stat().st_mtime_ns for p in shards}
    # reuse: nothing rewritten
    ensure_cache(recs, backbone, tmp_path/'c', root=data, max_frames=16, views=2, progress=False)
    assert {p: p.stat().st_mtime_ns for p in shards} == stamp
    # mismatch: another model (other random weights), another frame cap
    with pytest.raises(CacheMismatchError, match='model.fingerprint'):
        ensure_cache(recs, make_backbone('a3lign-tiny', None, 'cpu', seed=1), tmp_path/'c', root=data, max_frames=16, views=2)
    with pytest.raises(CacheMismatchError, match='max_frames: cache has 16, this run needs 32'):
        ensure_cache(recs, backbone, tmp_path/'c', root=data, max_frames=32, views=2)
    # resume: an interrupted build (manifest not complete, one shard missing) redoes only that shard
    m = json.loads((tmp_path/'c'/'manifest.json').read_text()); m['complete'] = False
    (tmp_path/'c'/'manifest.json').write_text(json.dumps(m))
    before = c.get(5)[0].clone()
    shard_path(tmp_path/'c', 1).unlink()
    c2 = ensure_cache(recs, backbone, tmp_path/'c', root=data, max_frames=16, views=2, progress=False)
    rewritten = [p for p in shards if p.stat().st_mtime_ns != stamp[p]]
    assert rewritten == [shard_path(tmp_path/'c', 1)]
    assert torch.equal(c2.get(5)[0], before)  # bit-identical, augmented view included (seeded)


def test_cache_and_video_paths_agree(data, trained_run, tmp_path):
    "Same frames drawn in both paths; features equal up to fp16 rounding; training curves agree."
    from a3lign_nb.data.datasets import read_annotations
    from a3lign_nb.data.video import clip_transform_for
    recs = list(read_annotations(data/'train.txt'))
    backbone = make_backbone('a3lign-tiny', None, 'cpu', seed=0)
    c = ensure_cache(recs, backbone, tmp_path/'c', root=data, max_frames=16, progress=False)
    dc = CachedClipDataset(c, recs, 16, train=True, seed=3, root=data)
    dv = VideoClipDataset(recs, clip_transform_for(backbone), 16, train=True, seed=3, max_frames=16)
    for e in (0, 5):
        dc.set_epoch(e); dv.set_epoch(e)
        for i in range(len(recs)):
            a, b = dc[i]['feats'], backbone.encode_images(dv[i]['frames'])
            torch.testing.assert_close(a, b, atol=2e-3, rtol=2e-3)
    b = pipelines.train(tiny_cfg(data, tmp_path/'video', use_cache=False))
    la = [json.loads(l) for l in open(trained_run/'log.jsonl')]   # the same run from the cache (conftest's trained_run)
    lb = [json.loads(l) for l in open(tmp_path/'video'/'log.jsonl')]
    np.testing.assert_allclose([r['train_loss'] for r in la], [r['train_loss'] for r in lb], rtol=1e-3)


def test_validation_selection_never_uses_test(data, tmp_path):
    with pytest.raises(ValueError, match='val_fraction'):
        pipelines.train(tiny_cfg(data, tmp_path/'x', select='val_uar'))
    rep = pipelines.train(tiny_cfg(data, tmp_path/'v', val_fraction=0.34, select='val_uar'))
    log = [json.loads(l) for l in open(tmp_path/'v'/'log.jsonl')]
    assert all('val_uar' in r for r in log)
    best = max(log, key=lambda r: r['val_uar'])  # first epoch with the top val UAR
    assert rep['selected_by'] == 'val_uar' and rep['epoch'] == best['epoch']
    tr, va = factory.stratified_split([0, 0, 0, 1, 1, 1], 0.34, seed=0)
    assert len(va) == 2 and sorted(np.array([0, 0, 0, 1, 1, 1])[va]) == [0, 1]


def test_load_checkpoint_round_trip(trained_run, tmp_path):
    rep = json.loads((trained_run/'eval.json').read_text())
    m = factory.load_checkpoint(trained_run)
    again = pipelines.evaluate(trained_run, device='cpu', progress=False, out=str(tmp_path/'again.json'))
    assert (again['war'], again['uar'], again['confusion']) == (rep['war'], rep['uar'], rep['confusion'])
    assert m.training is False


# ---------------------------------------------------------------- metrics (hand-computed)
def test_metrics_hand_computed():
    yt, yp = [0, 0, 1, 1, 1, 3], [0, 2, 1, 1, 0, 3]
    assert confusion_matrix(yt, yp, 4).tolist() == [[1, 0, 1, 0], [1, 2, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]]
    assert war(yt, yp) == pytest.approx(4 / 6)
    r = per_class_recall(yt, yp, 4)
    assert r[[0, 1, 3]].tolist() == pytest.approx([1 / 2, 2 / 3, 1]) and np.isnan(r[2])
    assert uar(yt, yp, 4) == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)              # class 2 absent: excluded
    assert uar(yt, yp, 4, absent='zero') == pytest.approx((1 / 2 + 2 / 3 + 0 + 1) / 4)
    with pytest.raises(ValueError, match='class id 4'): uar(yt, [0, 0, 1, 1, 1, 4], 4)
    s = fold_summary([dict(uar=.5, war=.6), dict(uar=.7, war=.9), dict(uar=.6, war=.6)])
    assert s['uar']['mean'] == pytest.approx(.6) and s['war']['std'] == pytest.approx(np.std([.6, .9, .6], ddof=1))


# ---------------------------------------------------------------- precision and amp
def test_clip_precision_used_in_training_and_loading(data, tmp_path):
    assert next(make_backbone('a3lign-tiny', None, 'cpu', precision='bf16').model.parameters()).dtype == torch.bfloat16
    pipelines.train(tiny_cfg(data, tmp_path/'r', stop_after=1, backbone_precision='bf16'))
    m = factory.load_checkpoint(tmp_path/'r')   # fingerprint of the bf16 tower: same weights as training used
    assert next(m.backbone.model.parameters()).dtype == torch.bfloat16


def test_fp16_scaler_survives_resume_at_stage_boundary(data, tmp_path):
    "One GradScaler lives through all stages: resuming at a stage start must restore it, not start a fresh one."
    cfg = lambda out, **kw: tiny_cfg(data, out, amp='fp16', **kw)
    pipelines.train(cfg(tmp_path/'full', stop_after=3))              # text, image, first joint epoch, uninterrupted
    pipelines.train(cfg(tmp_path/'split', stop_after=2))             # text + image ...
    pipelines.train(cfg(tmp_path/'split', stop_after=1))             # ... resumed at the joint stage's first epoch
    a, b = (checkpoint.read_checkpoint(p/'last.json') for p in (tmp_path/'full', tmp_path/'split'))
    assert a['scaler'] is not None and a['scaler'] == b['scaler']
    for k in a['model']: assert torch.equal(a['model'][k], b['model'][k]), k


def test_cache_key_records_autocast(data, tmp_path):
    from a3lign_nb.data.datasets import read_annotations
    recs = list(read_annotations(data/'test.txt'))[:2]
    backbone = make_backbone('a3lign-tiny', None, 'cpu', seed=0)
    c = ensure_cache(recs, backbone, tmp_path/'c', root=data, max_frames=8, progress=False, amp='bf16')
    assert c.manifest['key']['autocast'] == 'bfloat16'
    with pytest.raises(CacheMismatchError, match="autocast: cache has 'bfloat16', this run needs 'none'.*--amp"):
        ensure_cache(recs, backbone, tmp_path/'c', root=data, max_frames=8, progress=False, amp='none')


# ---------------------------------------------------------------- unreadable clips
def test_corrupt_clip_named_or_skipped(data, tmp_path):
    import shutil
    import warnings
    from a3lign_nb.data.datasets import ClipLoadError, read_annotations
    d = tmp_path/'d'; shutil.copytree(data, d)
    (d/'clips'/'train_1_0.mp4').write_bytes(b'not a video at all' * 50)   # line 4 of train.txt
    recs = read_annotations(d/'train.txt')
    backbone = make_backbone('a3lign-tiny', None, 'cpu', seed=0)
    src = f"{d/'train.txt'}:4"
    with pytest.raises(ClipLoadError, match=f"{src}: cannot load clip .*train_1_0.mp4"):
        ensure_cache(recs, backbone, tmp_path/'c', root=d, max_frames=8, shard_size=2, progress=False)
    with pytest.warns(UserWarning, match='train.txt:4'):
        c = ensure_cache(recs, backbone, tmp_path/'c', root=d, max_frames=8, shard_size=2, progress=False, skip_bad=True)
    assert c.manifest['complete'] and [s[1] for s in c.manifest['skipped']] == [src]
    assert [r[1] for r in c.skipped.values()] != [] and len(c) == len(recs)
    # finished, not retried: a resumed build keeps the shard with the skipped clip
    m = json.loads((tmp_path/'c'/'manifest.json').read_text()); m['complete'] = False
    (tmp_path/'c'/'manifest.json').write_text(json.dumps(m))
    stamp = {p: p.stat().st_mtime_ns for p in (tmp_path/'c'/'shards').glob('*.safetensors')}
    c = ensure_cache(recs, backbone, tmp_path/'c', root=d, max_frames=8, shard_size=2, progress=False, skip_bad=True)
    assert c.manifest['complete'] and {p: p.stat().st_mtime_ns for p in stamp} == stamp
    # training from it: left out with skip_bad, a clear error without
    with pytest.warns(UserWarning, match='train.txt:4'):
        ds = CachedClipDataset(c, recs, 4, root=d, skip_bad=True)
    assert len(ds) == len(recs) - 1 and ds.skipped[0][0] == src
    with pytest.raises(ClipLoadError, match=f'{src}: .*skipped when the cache was built.*--skip-bad'):
        CachedClipDataset(c, recs, 4, root=d)
    # straight from video: error names the line; skip_bad stands the next clip in
    from a3lign_nb.data.video import clip_transform_for
    v = VideoClipDataset(recs, clip_transform_for(backbone), 4, max_frames=8)
    with pytest.raises(ClipLoadError, match=f'{src}: cannot load clip'): v[3]
    v = VideoClipDataset(recs, clip_transform_for(backbone), 4, max_frames=8, skip_bad=True)
    with warnings.catch_warnings(record=True): item = v[3]
    assert item['index'] == 4 and v.skipped[0][0] == src
    # the whole run with --skip-bad
    rep = pipelines.train(tiny_cfg(d, tmp_path/'run', cache_dir=str(tmp_path/'c2'), skip_bad=True, text_epochs=1,
                              image_epochs=0, joint_epochs=0))
    assert 'uar' in rep and json.loads((tmp_path/'c2'/'manifest.json').read_text())['skipped'][0][1] == src
