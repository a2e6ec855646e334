"""The shipped image tower for the tiny conv CLIP (`a3lign_nb/model_configs/a3lign-tiny-rn-synthetic.safetensors`, tag `synthetic`)."""
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
