"""The explorers and run figures without a browser: changing a control changes the figure data as expected."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from a3lign_nb.eval.figures import confusion_figure, curves_figure, read_log, write_run_report
from a3lign_nb.explore.time import TimeExplorer, shuffled_order, temporal_alignment
from a3lign_nb.explore.tokens import LAYERS, TokenExplorer, collect_features, project_2d

CLASSES = ('happiness', 'sadness', 'neutral', 'anger')
T = 8


@pytest.fixture(scope='module')
def model():
    "A tiny A3lign-DFER on the tiny random CLIP (few sentences and tokens, so it builds in a moment)."
    from a3lign_nb.models.a3lign import A3lignConfig, A3lignDFER
    from a3lign_nb.testing import tiny_backbone
    torch.manual_seed(0)
    cfg = A3lignConfig(backbone='a3lign-tiny', classes=CLASSES, num_segments=T,
                       num_sentences=4, tokens_per_sentence=8)
    return A3lignDFER(cfg, tiny_backbone()).eval()


@pytest.fixture(scope='module')
def checkpoints(model):
    "Two 'epochs': the model as built, and every trainable tensor nudged."
    sd0 = {k: v.clone() for k, v in model.trainable_state_dict().items()}
    g = torch.Generator().manual_seed(1)
    sd1 = {k: v + 0.1 * torch.randn(v.shape, generator=g) if v.is_floating_point() else v for k, v in sd0.items()}
    return {'epoch_001': sd0, 'epoch_002': sd1}


@pytest.fixture(scope='session')
def umap_warm():
    "Pay umap-learn's numba JIT (10-30 s) once per session."
    project_2d(np.random.default_rng(0).normal(size=(30, 8)), 'umap', n_neighbors=5, n_epochs=20)
    return True


@pytest.fixture(scope='module')
def clips(tmp_path_factory):
    "A few short clips: the shipped samples when present, else a fresh synthetic set."
    from a3lign_nb.data.datasets import read_annotations
    from a3lign_nb.utils import REPO_SAMPLES
    lst = REPO_SAMPLES/'synthetic'/'test.txt' if REPO_SAMPLES is not None else None
    if lst is None or not lst.exists():
        from a3lign_nb.data.synth import write_synthetic_dataset
        out = tmp_path_factory.mktemp('synth')
        write_synthetic_dataset(out, 1, 1, size=64, seed=0, progress=False)
        lst = out/'test.txt'
    recs = [r for r in read_annotations(lst) if r.label < len(CLASSES)]
    return recs[:4]


# ---- figures ---------------------------------------------------------------------------------------
def _run(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder/'log.jsonl', 'w') as f:
        for e, s in enumerate(['text', 'text', 'image', 'joint']):
            f.write(json.dumps(dict(epoch=e, stage=s, lr=0.01, train_loss=1.0 - 0.1 * e, test_uar=0.3 + 0.1 * e)) + '\n')
    (folder/'eval.json').write_text(json.dumps(dict(war=0.5, uar=0.5, confusion=[[3, 1], [1, 3]], classes=['a', 'b'])))
    return folder


def test_curves_and_confusion(tmp_path):
    run = _run(tmp_path/'run')
    fig = curves_figure(run)
    assert [t.name for t in fig.data] == ['train_loss', 'test_uar', 'lr']
    assert list(fig.data[1].y) == pytest.approx([0.3, 0.4, 0.5, 0.6])
    cf = confusion_figure([[3, 1], [0, 0]], ['a', 'b'])
    z = np.array(cf.data[0].z, dtype=float)
    assert z[0].tolist() == [0.75, 0.25] and np.isnan(z[1]).all()  # an empty class stays empty, no division by zero
    with pytest.raises(ValueError, match='square'): confusion_figure([[1, 2, 3]], ['a'])


def test_write_run_report(tmp_path):
    run = _run(tmp_path/'run')
    paths = write_run_report(run)
    assert [p.name for p in paths] == ['curves.html', 'confusion.html']
    assert all(p.stat().st_size > 1000 for p in paths) and (run/'plotly.min.js').exists()
    assert not [p for p in run.iterdir() if p.name.endswith('.tmp')]
    (run/'log.jsonl').write_text('{"epoch": 0}\n{"epo')
    with pytest.raises(ValueError, match='log.jsonl:2'): read_log(run)
    with pytest.raises(FileNotFoundError, match='nothing to draw'): write_run_report(tmp_path)


# ---- token explorer ---------------------------------------------------------------------------------
def test_collect_features(model):
    C, S = len(CLASSES), model.cfg.num_sentences
    X, meta = collect_features(model, clip_feats=torch.randn(3, T, model.backbone.embed_dim), clip_labels=[0, 1, 2],
                               clip_paths=['a.mp4', 'b.mp4', 'c.mp4'])
    assert X.shape == (C * S + 2 * C + 3, model.backbone.embed_dim)
    assert np.allclose(np.linalg.norm(X, axis=1), 1, atol=1e-5)
    assert meta[meta.layer == 'videos'].clip_path.tolist() == ['a.mp4', 'b.mp4', 'c.mp4']
    assert meta[meta.layer == 'sentences'].sentence.max() == S - 1


def test_token_controls_change_the_figure(model, checkpoints):
    feats = torch.randn(6, T, model.backbone.embed_dim, generator=torch.Generator().manual_seed(0))
    ex = TokenExplorer(model, checkpoints, feats, [0, 1, 2, 3, 0, 1], [f'c{i}.mp4' for i in range(6)])
    before = {k: v.clone() for k, v in model.trainable_state_dict().items()}
    ex.widget()
    assert ex.checkpoint == 'epoch_002' and ex.available_layers == tuple(LAYERS)
    x_last = [np.array(t.x) for t in ex.fig.data]
    # a user moves the checkpoint slider: the MAT points move, CLIP's own text points do not, the axes stay
    rng = (tuple(ex.fig.layout.xaxis.range), tuple(ex.fig.layout.yaxis.range))
    ex._controls['checkpoint'].value = 'epoch_001'
    pts = ex.points()
    assert not np.allclose(np.concatenate([np.array(t.x) for t in ex.fig.data]), np.concatenate(x_last))
    ex.set(checkpoint='epoch_002'); pts2 = ex.points()
    clip_text = lambda p: p[p.layer == 'clip_text'][['x', 'y']].to_numpy()
    assert np.allclose(clip_text(pts), clip_text(pts2))
    assert not np.allclose(pts[pts.layer == 'sentences'].x.to_numpy(), pts2[pts2.layer == 'sentences'].x.to_numpy())
    assert (tuple(ex.fig.layout.xaxis.range), tuple(ex.fig.layout.yaxis.range)) == rng
    # swapping checkpoints leaves the model as it was
    assert all(torch.equal(before[k], v) for k, v in model.trainable_state_dict().items())
    # classes: hidden classes have empty traces
    ex._controls['classes'].value = ('sadness',)
    assert [len(t.x) for t in ex.fig.data] == [0, 4 + 1 + 1 + 2, 0, 0]  # S sentences, class, CLIP text, 2 clips
    # layers: only the videos, hover text names the clip
    ex.set(classes=CLASSES, layers=['videos'])
    assert sum(len(t.x) for t in ex.fig.data) == 6
    assert 'c1.mp4' in ex.fig.data[1].text[0] and 'square-open' in ex.fig.data[1].marker.symbol
    with pytest.raises(ValueError, match='not available'): ex.set(layers=['pixels'])
    with pytest.raises(KeyError, match='unknown control'): ex.set(zoom=2)
    with pytest.raises(ValueError, match='is not one of'): ex.set(checkpoint='epoch_999')


@pytest.mark.slow  # umap-learn's numba JIT: 20-30 s once per process
def test_token_umap_controls(model, checkpoints, umap_warm):
    ex = TokenExplorer(model, checkpoints, layers=['sentences', 'classes'])
    ex.widget()
    pca = ex.points()[['x', 'y']].to_numpy()
    ex._controls['method'].value = 'umap'
    assert not ex._controls['n_neighbors'].disabled
    um = ex.points()[['x', 'y']].to_numpy()
    assert um.shape == pca.shape and not np.allclose(um, pca)
    assert 'UMAP' in ex.fig.layout.title.text
    ex._controls['n_neighbors'].value = 3
    um3 = np.array(ex.fig.data[0].x)
    assert not np.allclose(um3, um[:len(um3), 0])
    ex._controls['method'].value = 'pca'
    assert ex._controls['n_neighbors'].disabled
    assert np.allclose(ex.points()[['x', 'y']].to_numpy(), pca)


def test_token_checkpoint_files(model, checkpoints, tmp_path):
    "Checkpoints may be bare safetensors state dicts on disk."
    from safetensors.torch import save_file
    paths = {}
    for k, sd in checkpoints.items():
        paths[k] = tmp_path/f'{k}.safetensors'
        save_file({n: v.contiguous() for n, v in sd.items()}, str(paths[k]))
    a = TokenExplorer(model, paths).points()
    b = TokenExplorer(model, checkpoints).points()
    assert np.allclose(a[['x', 'y']].to_numpy(), b[['x', 'y']].to_numpy(), atol=1e-5)
    with pytest.raises(FileNotFoundError):
        TokenExplorer(model, {'x': tmp_path/'missing.safetensors'}).features()


# ---- temporal alignment explorer ---------------------------------------------------------------------
def test_temporal_alignment_and_shuffle(model):
    feats = torch.randn(T, model.backbone.embed_dim, generator=torch.Generator().manual_seed(0))
    perm = torch.as_tensor(shuffled_order(T, seed=3))
    r, rs = temporal_alignment(model, feats), temporal_alignment(model, feats[perm])
    assert r['frame_sim'].shape == (T, len(CLASSES)) and r['sent_sim'].shape == (len(CLASSES), T, model.cfg.num_sentences)
    assert np.allclose(rs['frame_sim'], r['frame_sim'][perm.numpy()], atol=1e-5)
    mean_p = temporal_alignment(model, feats, temporal=False)['probs']
    assert np.allclose(temporal_alignment(model, feats[perm], temporal=False)['probs'], mean_p, atol=1e-6)


def test_time_controls_change_the_figure(model, clips, tmp_path):
    ex = TimeExplorer(model, clips)
    ex.widget()
    C = len(CLASSES)
    assert ex.cls == CLASSES[clips[0].label]
    shapes = lambda: [(s.x0, s.y0) for s in ex.fig.layout.shapes]
    frame_img = ex.fig.data[-2].source
    ex._controls['frame'].value = 3  # the user drags the frame slider
    assert shapes() == [(3 * ex.thumb, 0), (3, 0), (0, 3)]
    assert ex.fig.data[-2].source != frame_img or np.array_equal(ex.analysis()['frames'][0], ex.analysis()['frames'][3])
    strip, lines = ex.fig.data[0].source, np.array(ex.fig.data[1].y)
    ex._controls['shuffled'].value = True
    assert ex.fig.data[0].source != strip
    assert np.allclose(np.array(ex.fig.data[1].y), lines[shuffled_order(T)], atol=1e-5)
    assert 'shuffled' in ex.fig.layout.title.text
    z = np.array(ex.fig.data[1 + C].z)
    ex._controls['cls'].value = CLASSES[(CLASSES.index(ex.cls) + 1) % C]
    assert not np.allclose(np.array(ex.fig.data[1 + C].z), z)
    assert ex.cls in ex.fig.layout.annotations[2].text
    title = ex.fig.layout.title.text
    ex._controls['clip'].value = 1
    assert ex.fig.layout.title.text != title and clips[1].path.name in ex.fig.layout.title.text
    assert ex.cls == CLASSES[clips[1].label]  # the heatmap follows the new clip's true class
    bars = np.array(ex.fig.data[-1].y)
    assert bars.shape == (C,) and abs(bars.sum() - 1) < 1e-5
    # a file typed in the box
    ex._controls['path'].value = str(clips[2].path); ex._controls['load'].click()
    assert ex.clip == len(ex.clips) - 1 and ex.fig.layout.title.text.startswith(clips[2].path.name)
    ex._controls['path'].value = str(tmp_path/'nope.mp4'); ex._controls['load'].click()
    assert 'cannot load' in ex._controls['status'].value
    with pytest.raises(IndexError, match='outside'): ex.set(frame=T)
    with pytest.raises(ValueError, match='is not one of'): ex.set(cls='boredom')


def test_shipped_checkpoint_opens_both_explorers():
    "The notebook's promise: both explorers open on the shipped samples without training."
    from a3lign_nb.explore.tokens import shipped_run
    try: shipped_run()
    except FileNotFoundError as e: pytest.fail(str(e))
    tok = TokenExplorer.from_samples(method='pca')
    assert len(tok.checkpoints) >= 2 and 'videos' in tok.available_layers
    tok.widget()
    tim = TimeExplorer.from_samples()
    tim.widget()
    assert len(tim.clips) > 0 and len(tim.fig.layout.shapes) == 3


# ---------------------------------------------------------------- the learned tokens read as words (CoOp)
def test_nearest_words_matches_brute_force(model):
    from a3lign_nb.explore.tokens import nearest_words, read_sentences
    C, S, Tk, W = model.mat.tokens.shape
    w = nearest_words(model, k=3)
    assert len(w) == C * S * Tk and list(w.columns[:6]) == ['class_idx', 'cls', 'sentence', 'position', 'word', 'score']
    E = model.backbone.model.token_embedding.weight.detach().float()
    X = model.mat.tokens.detach().float().reshape(-1, W)
    d, i = torch.cdist(X, E).topk(3, largest=False)  # [P, 3]
    assert w.ids.tolist() == [tuple(r) for r in i.tolist()]
    np.testing.assert_allclose(np.stack(w.scores.to_numpy()), d.numpy(), rtol=1e-3, atol=1e-4)
    cos = torch.nn.functional.normalize(X, dim=-1) @ torch.nn.functional.normalize(E, dim=-1).T
    wc = nearest_words(model, k=2, metric='cosine', budget=5000)  # small vocabulary chunks: the same answer
    assert wc.ids.tolist() == [tuple(r) for r in cos.topk(2).indices.tolist()]
    assert w.word.iloc[0] == model.backbone.tokenizer.decode([int(i[0, 0])]).strip()
    sub = nearest_words(model, k=1, cls=['anger', 1], sentence=2)
    assert sub.cls.unique().tolist() == ['sadness', 'anger'] and set(sub.sentence) == {2} and len(sub) == 2 * Tk
    r = read_sentences(w)
    assert len(r) == C * S and r.text.str.split().str.len().max() >= Tk  # decoded words can hold spaces
    with pytest.raises(ValueError, match='not a class'): nearest_words(model, cls='boredom')
    with pytest.raises(ValueError, match='metric'): nearest_words(model, metric='manhattan')


def test_nearest_words_finds_the_init_text():
    "A MAT initialised from the class names starts ON the names' token embeddings: distance 0."
    from a3lign_nb.explore.tokens import nearest_words
    from a3lign_nb.models.a3lign import A3lignConfig, A3lignDFER
    from a3lign_nb.testing import tiny_backbone
    cfg = A3lignConfig(backbone='a3lign-tiny', classes=CLASSES, num_segments=T,
                       num_sentences=2, tokens_per_sentence=4, mat_init='class_name')
    w = nearest_words(A3lignDFER(cfg, tiny_backbone()), k=2)
    first = w[w.position == 0]
    assert first.word.tolist() == [c for c in CLASSES for _ in range(2)]
    assert first.score.abs().max() < 1e-4 and (w[w.position > 0].score > .1).all()
    # the no-MAT ablation has fixed prompts, nothing learned to read
    cfg = A3lignConfig(backbone='a3lign-tiny', classes=CLASSES, num_segments=T, use_mat=False)
    with pytest.raises(ValueError, match='no learnable MAT tokens'): nearest_words(A3lignDFER(cfg, tiny_backbone()))


def test_token_words_panel_follows_controls(model, checkpoints):
    ex = TokenExplorer(model, checkpoints)
    before = {k: v.clone() for k, v in model.trainable_state_dict().items()}
    ex.widget()
    c = ex._controls
    assert c['words'].value == ''  # folded: nothing computed yet
    c['words_box'].selected_index = 0  # the user opens the panel
    assert 'epoch_002' in c['words'].value and all(n in c['words'].value for n in CLASSES)
    c['classes'].value = ('neutral',)
    assert 'neutral' in c['words'].value and 'sadness' not in c['words'].value
    assert len(ex.words_table()) == model.cfg.num_sentences
    d2 = ex.words().score.to_numpy()
    c['checkpoint'].value = 'epoch_001'
    assert 'epoch_001' in c['words'].value and not np.allclose(ex.words().score.to_numpy(), d2)
    assert all(torch.equal(before[k], v) for k, v in model.trainable_state_dict().items())  # the model is restored


def test_explorers_score_the_frames_evaluation_scores(tmp_path):
    "The explorers read a run's clips as its evaluation does: its protocol, frames per clip, frame cap and transform."
    import shutil
    from a3lign_nb import factory
    from a3lign_nb.data.video import frame_indices, sample_indices
    from a3lign_nb.eval.metrics import batch_features
    from a3lign_nb.explore.tokens import clip_features, shipped_run
    from a3lign_nb.data.datasets import read_annotations
    from a3lign_nb.data.synth import write_video
    from a3lign_nb.data.video import read_frames
    from a3lign_nb.explore.tokens import run_test_list
    run = tmp_path/'run'
    shutil.copytree(shipped_run(), run)
    # a few of the run's test clips and a 10-frame copy of one (the shipped time set's clips all have 16 frames or more)
    src = list(read_annotations(run_test_list(shipped_run())))[:3]
    short = write_video(tmp_path/'short.mp4', read_frames(src[0].path, np.arange(10)))
    (tmp_path/'test.txt').write_text(''.join(f'{r.path} {r.num_frames} {r.label}\n' for r in src) + f'{short} 10 {src[0].label}\n')
    conf = json.loads((run/'config.json').read_text())
    conf['train'].update(protocol='dfer-clip', use_cache=False, test_list=str(tmp_path/'test.txt'))  # not the explorers' old default ('tsn')
    (run/'config.json').write_text(json.dumps(conf))
    cfg = factory.run_config(run)
    model = factory.load_checkpoint(run)
    _, tr, ts, root = factory.read_lists(cfg)
    _, test_ds, _ = factory.make_datasets(cfg, model.backbone, tr, ts, root, torch.device('cpu'))  # what `evaluate` scores
    tex = TimeExplorer.from_run(run, backbone=model.backbone)
    assert [c['path'] for c in tex.clips] == [Path(r.path) for r in test_ds.records]
    shorts = [i for i, r in enumerate(test_ds.records) if r.num_frames < cfg.model.num_segments]  # 'dfer-clip' pads these
    assert shorts, 'the test list should hold a clip shorter than 16 frames'
    i = shorts[0]; r = test_ds.records[i]
    fi = frame_indices(r.num_frames, cfg.model.num_segments, protocol='dfer-clip', max_frames=cfg.max_frames)
    assert not np.array_equal(fi, sample_indices(r.num_frames, cfg.model.num_segments))  # the test can tell the protocols apart
    for k in (0, i):
        item = test_ds[k]
        want = batch_features(model, dict(frames=item['frames'][None]), torch.device('cpu'), None)[0]  # [T, D], fp16-rounded
        torch.testing.assert_close(tex.clip_data(k)['feats'], want, atol=2e-2, rtol=1e-2)
        got = clip_features(model.backbone, [test_ds.records[k]], **factory.run_frames(run))[0]  # the token explorer's video points
        torch.testing.assert_close(got, want, atol=2e-2, rtol=1e-2)


# ---------------------------------------------------------------- the time explorer over a prediction (`a3lign predict`)
@pytest.fixture(scope='module')
def covered_prediction(tmp_path_factory):
    "The shipped demo model's prediction over carphone with its face covered from 1.5 s to 2.5 s."
    from fractions import Fraction
    from a3lign_nb.data.faces import read_video, sample_face_video
    from a3lign_nb.data.synth import write_video
    from a3lign_nb.factory import load_model
    from a3lign_nb.predict import predict_video
    from a3lign_nb.utils import REPO_SAMPLES
    if REPO_SAMPLES is None: pytest.skip('the shipped demo run is not here (not a source checkout)')
    frames, ts, fps = read_video(sample_face_video())
    frames = frames.copy(); frames[(ts >= 1.5) & (ts < 2.5)] = 0
    path = write_video(tmp_path_factory.mktemp('video')/'covered.mp4', frames, Fraction(30000, 1001))
    model = load_model(REPO_SAMPLES/'checkpoints'/'demo')
    return predict_video(path, model), model


def test_time_explorer_opens_a_prediction(covered_prediction):
    "Each window with a face is a clip scored exactly as the prediction scored it; the timeline's cursor follows the window shown."
    res, model = covered_prediction
    tex = TimeExplorer.from_prediction(res, model)
    face = [r for r in res['rows'] if r['has_face']]
    assert 0 < len(face) < len(res['rows']) and len(tex.clips) == len(face)   # the covered stretch has no-face rows
    for i, r in enumerate(face):
        tex.set(clip=i)
        assert tex.clips[i]['frames'].shape == (res['num_segments'], 224, 224, 3)
        got = tex.analysis()['probs']
        np.testing.assert_allclose(got, [r['probs'][c] for c in tex.classes], atol=1e-4)   # the same frames, the same model
    tex.widget()
    r = face[-1]
    assert tex.select_time((r['start'] + r['end']) / 2) is not None
    cursor = [s for s in tex._timeline.layout.shapes if s.line.color == 'red']
    assert len(cursor) == 1 and (cursor[0].x0, cursor[0].x1) == (face[-1]['start'], face[-1]['end'])
    gap = next(r for r in res['rows'] if not r['has_face'] and not any(f['start'] <= r['start'] < f['end'] for f in face))
    assert tex.select_time(gap['start'] + 1e-3) is None and 'no face' in tex._controls['status'].value
    shaded = [(s.x0, s.x1) for s in tex._timeline.layout.shapes if s.fillcolor == 'grey']
    assert shaded and all(any(a <= r['start'] and r['end'] <= b for a, b in shaded) for r in res['rows'] if not r['has_face'])
