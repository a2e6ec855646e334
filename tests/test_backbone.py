"Loading CLIP weights from every supported source, offline, and failing fast and clearly when they are absent."
import json
import urllib.request

import pytest
import torch
from safetensors.torch import save_file

from a3lign_nb.backbone import WEIGHTS_ENV, FrozenCLIP, WeightsNotFound, load_backbone
from a3lign_nb.testing import tiny_backbone


@pytest.fixture
def no_network(monkeypatch, tmp_path):
    "Any attempt to reach the network fails the test; no cache outside tmp_path is consulted."
    def boom(*a, **k): raise AssertionError(f'network access attempted: {a[:1]}')
    monkeypatch.setattr(urllib.request, 'urlopen', boom)
    monkeypatch.setenv('HF_HUB_CACHE', str(tmp_path/'hf'))
    monkeypatch.setenv('HOME', str(tmp_path/'home'))
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    monkeypatch.delenv('A3LIGN_ALLOW_DOWNLOAD', raising=False)


def _state(backbone: FrozenCLIP): return {k: v.clone().contiguous() for k, v in backbone.model.state_dict().items()}


def test_missing_tag_fails_fast_and_says_how(no_network, tmp_path):
    with pytest.raises(WeightsNotFound) as e:
        load_backbone('ViT-B-16-quickgelu', 'openai', cache_dir=str(tmp_path/'empty'))
    msg = str(e.value)
    for part in ("'openai'", "'ViT-B-16-quickgelu'", 'ViT-B-16.pt', WEIGHTS_ENV, '--allow-download'):
        assert part in msg, part


def test_missing_file_and_folder_named(no_network, tmp_path):
    with pytest.raises(WeightsNotFound, match='nope.safetensors does not exist'):
        load_backbone('a3lign-tiny', str(tmp_path/'nope.safetensors'))
    with pytest.raises(WeightsNotFound, match='has no open_clip_config.json'):
        load_backbone(f'local-dir:{tmp_path}')
    with pytest.raises(ValueError, match='unknown CLIP model'):
        load_backbone('ViT-Nope')


def test_checkpoint_file(no_network, tmp_path):
    ref = tiny_backbone(seed=3)
    save_file(_state(ref), tmp_path/'tiny.safetensors')
    got = load_backbone('a3lign-tiny', str(tmp_path/'tiny.safetensors'))
    ids = got.tokenize(['a photo of a happy face'])
    torch.testing.assert_close(got.encode_text(ids), ref.encode_text(ids))


def test_tag_found_in_weights_folder(no_network, tmp_path, monkeypatch):
    import open_clip
    ref = tiny_backbone(seed=4)
    save_file(_state(ref), tmp_path/'a3lign-tiny-mytag.safetensors')
    orig = open_clip.get_pretrained_cfg
    monkeypatch.setattr(open_clip, 'get_pretrained_cfg',
                        lambda n, t: {'url': '', 'mean': (0.5,) * 3, 'std': (0.25,) * 3} if t == 'mytag' else orig(n, t))
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path))
    got = load_backbone('a3lign-tiny', 'mytag')
    assert got.mean == (0.5,) * 3 and got.std == (0.25,) * 3
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(got.encode_images(x), ref.encode_images(x))


def _write_open_clip_folder(folder, backbone):
    import open_clip
    folder.mkdir(parents=True)
    cfg = {'model_cfg': open_clip.get_model_config('a3lign-tiny'),
           'preprocess_cfg': {'mean': list(backbone.mean), 'std': list(backbone.std)}}
    (folder/'open_clip_config.json').write_text(json.dumps(cfg))
    save_file(_state(backbone), folder/'open_clip_model.safetensors')


def test_local_dir(no_network, tmp_path):
    ref = tiny_backbone(seed=5)
    _write_open_clip_folder(tmp_path/'tiny', ref)
    got = load_backbone(f'local-dir:{tmp_path/"tiny"}')
    ids = got.tokenize(['a photo of a sad face'])
    torch.testing.assert_close(got.encode_text(ids), ref.encode_text(ids))


def test_hf_hub_from_cache_offline(no_network, tmp_path):
    ref = tiny_backbone(seed=6)
    _write_open_clip_folder(tmp_path/'hf'/'models--someone--tiny-clip'/'snapshots'/'abc123', ref)
    got = load_backbone('hf-hub:someone/tiny-clip')
    ids = got.tokenize(['a photo of a fearful face'])
    torch.testing.assert_close(got.encode_text(ids), ref.encode_text(ids))
    with pytest.raises(WeightsNotFound, match='not in the Hugging Face cache'):
        load_backbone('hf-hub:someone/other')


def test_frozen_even_in_train_mode():
    backbone = load_backbone('a3lign-tiny')
    wrapper = torch.nn.Sequential(backbone)
    wrapper.train()
    assert not backbone.model.training and not any(p.requires_grad for p in backbone.parameters())
