"Bad input and faults: missing data root, a cache from another model, a checkpoint from another config, NaN loss, Ctrl-C, full disk."
import contextlib
import errno
import json
import os
import signal
from pathlib import Path

import pytest
import torch

from a3lign_nb.train import loop
from a3lign_nb.train.cache import CacheMismatchError
from test_train import make_clips, tiny_cfg


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    return make_clips(tmp_path_factory.mktemp('clips'), n_per_class=2)


def test_missing_data_root(data, tmp_path):
    with pytest.raises(FileNotFoundError, match='data root /no/such/root does not exist'):
        loop.train(tiny_cfg(data, tmp_path/'r', data_root='/no/such/root'))
    with pytest.raises(FileNotFoundError, match='annotation list .*nothere.txt not found'):
        loop.train(tiny_cfg(data, tmp_path/'r', train_list=str(data/'nothere.txt')))


def test_cache_from_another_model(data, tmp_path):
    cache = tmp_path/'cache'
    loop.extract(tiny_cfg(data, tmp_path/'r', cache_dir=str(cache)))
    with pytest.raises(CacheMismatchError, match=r'model.fingerprint: cache has .* this run needs'):
        loop.train(tiny_cfg(data, tmp_path/'r', cache_dir=str(cache), seed=1))  # other random CLIP weights
    with pytest.raises(CacheMismatchError, match='--rebuild-cache'):
        loop.extract(tiny_cfg(data, tmp_path/'r', cache_dir=str(cache), max_frames=8))
    c = loop.extract(tiny_cfg(data, tmp_path/'r', cache_dir=str(cache), max_frames=8, rebuild_cache=True))
    assert c.max_frames == 8


def test_checkpoint_from_another_config(data, tmp_path):
    loop.train(tiny_cfg(data, tmp_path/'r', stop_after=1))
    with pytest.raises(loop.CheckpointError, match='another config .*batch_size: 2 vs 3'):
        loop.train(tiny_cfg(data, tmp_path/'r', batch_size=3))
    with pytest.raises(loop.CheckpointError, match='fingerprint'):
        loop.load_checkpoint(tmp_path/'r', clip=loop.make_clip('a3lign-tiny', None, 'cpu', seed=5))
    with pytest.raises(FileExistsError, match='--overwrite'):
        loop.train(tiny_cfg(data, tmp_path/'r', resume=False))
    # runtime-only options may change on resume
    loop.train(tiny_cfg(data, tmp_path/'r', stop_after=1, num_workers=0, eval_every=2))
    # --overwrite starts afresh
    r = loop.train(tiny_cfg(data, tmp_path/'r', batch_size=3, overwrite=True, stop_after=1))
    assert r['epochs_done'] == 1


def test_nan_loss_names_step_and_keeps_checkpoint(data, tmp_path):
    def poison(epoch, step, batch):
        if epoch == 1 and step == 1: batch['feats'][0, 0, 0] = float('nan')
    with pytest.raises(loop.NonFiniteLoss) as e:
        loop.train(tiny_cfg(data, tmp_path/'r'), batch_hook=poison)
    msg = str(e.value)
    assert 'epoch 2' in msg and 'step 1 of the epoch' in msg and 'train.txt:' in msg and 'epoch_001.json' in msg
    assert loop.find_checkpoint(tmp_path/'r').name == 'epoch_001.json'
    m = loop.load_checkpoint(tmp_path/'r')   # last.* is still the good epoch 1
    assert all(torch.isfinite(v).all() for v in m.trainable_state_dict().values())


def test_ctrl_c_checkpoints_and_exits(data, tmp_path):
    def ctrl_c(epoch, step, batch):
        if epoch == 1 and step == 0: os.kill(os.getpid(), signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        loop.train(tiny_cfg(data, tmp_path/'r'), batch_hook=ctrl_c)
    ck = loop.find_checkpoint(tmp_path/'r')
    assert ck.name == 'epoch_001_step_000001.json'
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored
    rep = loop.train(tiny_cfg(data, tmp_path/'r'))
    assert 'uar' in rep


def test_full_disk_keeps_previous_checkpoint(data, tmp_path, monkeypatch):
    "ENOSPC in the middle of writing the epoch-2 checkpoint: epoch 1 (and last.*) survive, no temp files left."
    loop.train(tiny_cfg(data, tmp_path/'r', stop_after=1))
    before = (tmp_path/'r'/'last.safetensors').read_bytes()
    real = loop.atomic_write

    class Full:
        def __init__(self, f): self.f, self.n = f, 0
        def write(self, b):
            self.f.write(b[:len(b) // 2])
            raise OSError(errno.ENOSPC, 'No space left on device')
        def __getattr__(self, k): return getattr(self.f, k)

    @contextlib.contextmanager
    def full_disk(path, mode='w', **kw):
        with real(path, mode, **kw) as f: yield Full(f) if str(path).endswith('.safetensors') else f

    monkeypatch.setattr(loop, 'atomic_write', full_disk)
    with pytest.raises(OSError, match='previous checkpoint is intact') as e:
        loop.train(tiny_cfg(data, tmp_path/'r'))
    assert e.value.errno == errno.ENOSPC
    monkeypatch.setattr(loop, 'atomic_write', real)
    assert (tmp_path/'r'/'last.safetensors').read_bytes() == before
    assert loop.find_checkpoint(tmp_path/'r').name == 'epoch_001.json'
    assert not [p for p in (tmp_path/'r').rglob('*.tmp')]
    rep = loop.train(tiny_cfg(data, tmp_path/'r'))   # disk "freed": resumes and finishes
    assert 'uar' in rep
