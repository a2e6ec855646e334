"""The shipped weights of the tiny conv CLIP: the image tower alone (`a3lign-tiny-rn-synthetic.safetensors`, tag `synthetic`),
and both towers trained on a small vocabulary (`a3lign-tiny-rn-words.safetensors`, tag `words`)."""
import json
from pathlib import Path

import pytest
import torch

from a3lign_nb.backbone import load_backbone
from a3lign_nb.backbone import make_backbone

ROOT = Path(__file__).resolve().parent.parent
BASE = 'a3lign-tiny-rn'
WEIGHTS = ROOT/'a3lign_nb'/'model_configs'/f'{BASE}-synthetic.safetensors'


def _seeded(seed=0, name=BASE):
    "The random tiny CLIP as `tiny_backbone(seed, name)` builds it, but a fresh copy we may modify."
    return make_backbone(name, None, 'cpu', seed=seed)


def _load_visual(backbone, sd):
    "Load the shipped `visual.*` tensors into `clip` (strict; fp16 floats are cast by `load_state_dict`)."
    backbone.model.visual.load_state_dict({k[len('visual.'):]: v for k, v in sd.items()}, strict=True)
    return backbone


@pytest.fixture(scope='module')
def weights():
    from safetensors import safe_open
    from safetensors.torch import load_file
    assert WEIGHTS.exists(), f'{WEIGHTS} is missing: run `python data_samples/make_tiny_clip.py`'
    with safe_open(str(WEIGHTS), 'pt') as f: meta = f.metadata()
    return load_file(str(WEIGHTS)), meta


def test_keys_shapes_metadata(weights):
    sd, meta = weights
    ref = _seeded().model.visual.state_dict()
    assert set(sd) == {f'visual.{k}' for k in ref}
    want = torch.float16 if meta['dtype'] == 'float16' else torch.float32
    for k, v in ref.items():
        assert sd[f'visual.{k}'].shape == v.shape, k
        assert sd[f'visual.{k}'].dtype == (want if v.is_floating_point() else v.dtype), k
        assert torch.isfinite(sd[f'visual.{k}'].float()).all(), k
    assert meta['base_config'] == BASE and meta['text_seed'] == meta['a3lign_base_seed'] == '0'
    figs = json.loads(meta['figures'])
    assert figs['probe_test'] > figs['chance'] and figs['zero_shot_test'] > figs['chance']
    assert WEIGHTS.stat().st_size < 1_000_000
    assert WEIGHTS.stat().st_mode & 0o444 == 0o444  # readable by everyone


def test_loading_changes_images_not_text(weights):
    sd, _ = weights
    rand, pre = _seeded(), _load_visual(_seeded(), sd)
    x = torch.randn(3, 3, rand.image_size, rand.image_size, generator=torch.Generator().manual_seed(0))
    assert not torch.allclose(rand.encode_images(x), pre.encode_images(x), atol=1e-3)
    ids = rand.tokenize(['a photo of a happy face.', 'a photo of a sad face.'])
    assert torch.equal(rand.encode_text(ids), pre.encode_text(ids))
    assert all(not p.requires_grad for p in pre.parameters())  # still frozen
    assert not pre.model.visual.training  # BatchNorm uses the shipped running statistics


def test_tag_loads_the_shipped_file(weights):
    "`load_backbone(config, 'synthetic')` finds the file beside the config and equals loading it by hand."
    sd, _ = weights
    by_tag, by_hand = load_backbone(BASE, 'synthetic'), _load_visual(_seeded(), sd)
    x = torch.randn(2, 3, by_tag.image_size, by_tag.image_size, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(by_tag.encode_images(x), by_hand.encode_images(x))
    assert not any(p.requires_grad for p in by_tag.parameters()) and not by_tag.model.training


# ------------------------------------------------------------------------------------------ tag `words`: both towers
WORDS = ROOT/'a3lign_nb'/'model_configs'/f'{BASE}-words.safetensors'
SPARSE = ('token_embedding.rows', 'token_embedding.values')


def _read(path: Path) -> tuple[dict, dict]:
    "(tensors, metadata) of a safetensors file."
    from safetensors import safe_open
    from safetensors.torch import load_file
    with safe_open(str(path), 'pt') as f: return load_file(str(path)), f.metadata()


@pytest.fixture(scope='module')
def words():
    assert WORDS.exists(), f'{WORDS} is missing: run `python data_samples/make_tiny_clip_words.py`'
    return _read(WORDS)


def _by_hand(sd):
    "The seeded random tiny CLIP with the file's dense tensors loaded and its rows scattered, without the package's loader."
    clip = _seeded()
    dense = {k: v for k, v in sd.items() if k not in SPARSE}
    missing, unexpected = clip.model.load_state_dict(dense, strict=False)
    assert missing == ['token_embedding.weight'] and not unexpected, (missing, unexpected)
    with torch.no_grad(): clip.model.token_embedding.weight[sd[SPARSE[0]]] = sd[SPARSE[1]]
    return clip


def test_words_keys_shapes_metadata(words):
    sd, meta = words
    ref = _seeded().model.state_dict()
    assert set(sd) == (set(ref) - {'token_embedding.weight'}) | set(SPARSE)  # both towers, the token table only sparsely
    for k, v in ref.items():
        if k in sd: assert sd[k].shape == v.shape and sd[k].dtype == v.dtype, k
    rows, values = sd[SPARSE[0]], sd[SPARSE[1]]
    assert rows.dtype == torch.int64 and rows.ndim == 1 and len(rows.unique()) == len(rows) == int(meta['vocabulary_rows'])
    assert 0 <= int(rows.min()) and int(rows.max()) < ref['token_embedding.weight'].shape[0]
    assert values.shape == (len(rows), ref['token_embedding.weight'].shape[1]) and torch.isfinite(values).all()
    assert 50 < len(rows) < 500  # a small vocabulary, not the table
    assert meta['base_config'] == BASE and meta['a3lign_base_seed'] == '0' and meta['script'] == 'data_samples/make_tiny_clip_words.py'
    assert meta['command'].startswith('python data_samples/make_tiny_clip_words.py')
    vocab, split = json.loads(meta['vocabulary']), json.loads(meta['vocabulary_split'])
    for name in ('happiness', 'sadness', 'neutral', 'anger', 'surprise', 'disgust', 'fear', 'happy', 'sad', 'then', 'alternating'):
        assert name in vocab, name  # the class names as the data sets spell them, and the time set's words
    for c, held in split['held_out_synonyms'].items():
        assert held and not set(held) & set(split['training_adjectives'][c]), c
    assert WORDS.stat().st_size < 4_000_000 and WORDS.stat().st_mode & 0o444 == 0o444


def test_words_figures_in_metadata(words):
    "What the build measured: held-out words well above chance and above the old weights, the image tower no worse."
    figs, old = json.loads(words[1]['figures']), json.loads(_read(WEIGHTS)[1]['figures'])
    for where in ('fresh', 'shipped'):
        assert figs[f'zero_shot_heldout_{where}'] > 2 * figs['chance'], where
        assert figs[f'zero_shot_heldout_{where}'] > figs[f'zero_shot_heldout_{where}_old'] + 0.2, where
    assert figs['probe_test'] >= old['probe_test']
    assert figs['zero_shot_mat_init_shipped'] > figs['zero_shot_mat_init_shipped_old'] + 0.2  # MAT starts from words that mean something


def test_words_tag_equals_by_hand(words):
    "`load_backbone(config, 'words')` equals the seeded model with the file loaded by hand; its vocabulary is the metadata's."
    sd, meta = words
    by_tag, by_hand = load_backbone(BASE, 'words'), _by_hand(sd)
    for k, v in by_hand.model.state_dict().items(): assert torch.equal(by_tag.model.state_dict()[k], v), k
    x = torch.randn(2, 3, by_tag.image_size, by_tag.image_size, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(by_tag.encode_images(x), by_hand.encode_images(x))
    ids = by_tag.tokenize(['a photo of a joyful face.', 'happy then sad'])
    torch.testing.assert_close(by_tag.encode_text(ids), by_hand.encode_text(ids))
    assert by_tag.vocabulary == tuple(json.loads(meta['vocabulary'])) and 'happiness' in by_tag.vocabulary
    assert load_backbone(BASE, 'synthetic').vocabulary is None and _seeded().vocabulary is None
    assert not any(p.requires_grad for p in by_tag.parameters()) and not by_tag.model.training


def test_words_other_rows_are_the_seeded_ones(words):
    "Only the vocabulary's rows of the token table changed: the other ~49k are the seeded random ones, bit for bit."
    rows = words[0][SPARSE[0]]
    table, seeded = load_backbone(BASE, 'words').model.token_embedding.weight, _seeded().model.token_embedding.weight
    other = torch.ones(len(table), dtype=torch.bool); other[rows] = False
    assert torch.equal(table[other], seeded[other])
    assert not torch.equal(table[rows], seeded[rows])


@pytest.mark.parametrize('what', ['index', 'shape', 'missing'])
def test_words_bad_rows_name_the_file(words, tmp_path, what):
    "A damaged sparse table fails in one line that names the file."
    from safetensors.torch import save_file
    from a3lign_nb.backbone import WeightsFileError
    sd, meta = dict(words[0]), words[1]
    if what == 'index': sd[SPARSE[0]] = sd[SPARSE[0]].clone(); sd[SPARSE[0]][0] = 10**6
    elif what == 'shape': sd[SPARSE[1]] = sd[SPARSE[1]][:, :10].contiguous()
    else: del sd[SPARSE[1]]
    bad = tmp_path/f'bad-{what}.safetensors'
    save_file(sd, str(bad), metadata=meta)
    with pytest.raises(WeightsFileError) as e: load_backbone(BASE, str(bad))
    msg = str(e.value)
    assert str(bad) in msg and 'token_embedding.rows' in msg and '\n' not in msg, msg


def test_words_bad_vocabulary_names_the_file(words, tmp_path):
    from safetensors.torch import save_file
    from a3lign_nb.backbone import WeightsFileError
    bad = tmp_path/'bad-vocab.safetensors'
    save_file(words[0], str(bad), metadata={**words[1], 'vocabulary': '{"not": "a list"}'})
    with pytest.raises(WeightsFileError, match='bad-vocab.safetensors: its metadata "vocabulary"'): load_backbone(BASE, str(bad))


@pytest.fixture(scope='module')
def shipped_happy_sad():
    "Frame-mean features (tag `words`) of the first 4 happy and 4 sad clips of the shipped test set: ([8, D], labels [8])."
    from a3lign_nb.data.datasets import ClipDataset, get_spec, read_annotations
    from a3lign_nb.data.video import clip_transform_for
    clip = load_backbone(BASE, 'words')
    anns = [a for a in read_annotations(ROOT/'data_samples'/'synthetic'/'test.txt', spec=get_spec('synthetic')) if a.label in (0, 1)]
    anns = [a for a in anns if a.label == 0][:4] + [a for a in anns if a.label == 1][:4]
    ds = ClipDataset(anns, num_segments=8, train=False, transform=clip_transform_for(clip, train=False))
    frames = torch.stack([ds[i]['frames'] for i in range(len(ds))])  # [8, T, 3, S, S]
    return clip, torch.nn.functional.normalize(clip.encode_frames(frames).mean(1), dim=-1), torch.tensor([a.label for a in anns])


def test_words_held_out_synonyms_point_the_right_way(shipped_happy_sad):
    "Held-out synonyms (never captioned an image) in a held-out phrasing: 'joyful' is nearer happy clips, 'miserable' sad ones."
    clip, f, y = shipped_happy_sad
    t = torch.nn.functional.normalize(clip.encode_text(clip.tokenize(
        ['an image of someone who is joyful.', 'an image of someone who is miserable.'])), dim=-1)
    s = f @ t.T  # [8, 2]
    assert s[y == 0, 0].mean() > s[y == 1, 0].mean() and s[y == 1, 1].mean() > s[y == 0, 1].mean(), s
    assert (s.argmax(1) == y).float().mean() >= 0.75, s  # and each clip mostly picks its own
