"Bad input and faults: missing data root, a cache from another model, a checkpoint from another config, NaN loss, Ctrl-C, full disk; damaged and hostile files."
import builtins
import configparser
import contextlib
import errno
import hashlib
import json
import os
import pickle
import re
import signal
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from a3lign_nb.backbone import WeightsFileError, load_backbone, load_weights_file
from a3lign_nb.data import video as V
from a3lign_nb.data.datasets import ClipLoadError, read_annotations
from a3lign_nb.data.video import clip_transform_for
from a3lign_nb import factory, pipelines
from a3lign_nb.backbone import make_backbone
from a3lign_nb.train import checkpoint, loop
from a3lign_nb.data.datasets import VideoClipDataset
from a3lign_nb.train.cache import CacheMismatchError, CacheShardError, FeatureCache, shard_path
from conftest import make_clips, run_cli, tiny_cfg


@pytest.fixture
def data(small_clips):
    "The session's tiny clips, 2 per class (conftest)."
    return small_clips


def test_missing_data_root(data, tmp_path):
    with pytest.raises(FileNotFoundError, match='data root /no/such/root does not exist'):
        pipelines.train(tiny_cfg(data, tmp_path/'r', data_root='/no/such/root'))
    with pytest.raises(FileNotFoundError, match='annotation list .*nothere.txt not found'):
        pipelines.train(tiny_cfg(data, tmp_path/'r', train_list=str(data/'nothere.txt')))


def test_cache_from_another_model(data, tmp_path):
    cache = tmp_path/'cache'
    pipelines.extract(tiny_cfg(data, tmp_path/'r', cache_dir=str(cache)))
    with pytest.raises(CacheMismatchError, match=r'model.fingerprint: cache has .* this run needs'):
        pipelines.train(tiny_cfg(data, tmp_path/'r', cache_dir=str(cache), seed=1))  # other random CLIP weights
    with pytest.raises(CacheMismatchError, match='--rebuild-cache'):
        pipelines.extract(tiny_cfg(data, tmp_path/'r', cache_dir=str(cache), max_frames=8))
    c = pipelines.extract(tiny_cfg(data, tmp_path/'r', cache_dir=str(cache), max_frames=8, rebuild_cache=True))
    assert c.max_frames == 8


def test_checkpoint_from_another_config(data, tmp_path):
    pipelines.train(tiny_cfg(data, tmp_path/'r', stop_after=1))
    with pytest.raises(checkpoint.CheckpointError, match='another config .*batch_size: 2 vs 3'):
        pipelines.train(tiny_cfg(data, tmp_path/'r', batch_size=3))
    with pytest.raises(checkpoint.CheckpointError, match='fingerprint'):
        factory.load_checkpoint(tmp_path/'r', backbone=make_backbone('a3lign-tiny', None, 'cpu', seed=5))
    with pytest.raises(FileExistsError, match='--overwrite'):
        pipelines.train(tiny_cfg(data, tmp_path/'r', resume=False))
    # runtime-only options may change on resume
    pipelines.train(tiny_cfg(data, tmp_path/'r', stop_after=1, num_workers=0, eval_every=2))
    # --overwrite starts afresh
    r = pipelines.train(tiny_cfg(data, tmp_path/'r', batch_size=3, overwrite=True, stop_after=1))
    assert r['epochs_done'] == 1


def test_nan_loss_names_step_and_keeps_checkpoint(data, tmp_path):
    def poison(epoch, step, batch):
        if epoch == 1 and step == 1: batch['feats'][0, 0, 0] = float('nan')
    with pytest.raises(loop.NonFiniteLoss) as e:
        pipelines.train(tiny_cfg(data, tmp_path/'r'), batch_hook=poison)
    msg = str(e.value)
    assert 'epoch 2' in msg and 'step 1 of the epoch' in msg and 'train.txt:' in msg and 'epoch_001.json' in msg
    assert checkpoint.find_checkpoint(tmp_path/'r').name == 'epoch_001.json'
    m = factory.load_checkpoint(tmp_path/'r')   # last.* is still the good epoch 1
    assert all(torch.isfinite(v).all() for v in m.trainable_state_dict().values())


@contextlib.contextmanager
def sigint(handler):
    "Run with this SIGINT handler, whatever the test runner started with (e.g. ignored under `nohup ... &`)."
    before = signal.signal(signal.SIGINT, handler)
    try: yield
    finally: signal.signal(signal.SIGINT, before)


def ctrl_c(epoch, step, batch):
    if epoch == 1 and step == 0: os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_checkpoints_and_exits(data, tmp_path):
    with sigint(signal.default_int_handler):  # a terminal's Ctrl-C
        with pytest.raises(KeyboardInterrupt):
            pipelines.train(tiny_cfg(data, tmp_path/'r'), batch_hook=ctrl_c)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler it found, restored
    ck = checkpoint.find_checkpoint(tmp_path/'r')
    assert ck.name == 'epoch_001_step_000001.json'
    rep = pipelines.train(tiny_cfg(data, tmp_path/'r'))
    assert 'uar' in rep


def test_ignored_sigint_stays_ignored(data, tmp_path):
    "Issue 11: started with SIGINT ignored (a background job, nohup), training neither installs a handler nor stops."
    with sigint(signal.SIG_IGN):
        rep = pipelines.train(tiny_cfg(data, tmp_path/'r'), batch_hook=ctrl_c)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    assert 'uar' in rep and not list((tmp_path/'r'/'checkpoints').glob('*_step_*'))


def test_custom_sigint_handler_comes_back(data, tmp_path):
    def mine(*_): pass
    with sigint(mine):
        with pytest.raises(KeyboardInterrupt):
            pipelines.train(tiny_cfg(data, tmp_path/'r'), batch_hook=lambda e, s, b: (ctrl_c(e, s, b), ctrl_c(e, s, b)))
        assert signal.getsignal(signal.SIGINT) is mine


def test_full_disk_keeps_previous_checkpoint(data, tmp_path, monkeypatch):
    "ENOSPC in the middle of writing the epoch-2 checkpoint: epoch 1 (and last.*) survive, no temp files left."
    pipelines.train(tiny_cfg(data, tmp_path/'r', stop_after=1))
    before = (tmp_path/'r'/'last.safetensors').read_bytes()
    real = checkpoint.atomic_write

    class Full:
        def __init__(self, f): self.f, self.n = f, 0
        def write(self, b):
            self.f.write(b[:len(b) // 2])
            raise OSError(errno.ENOSPC, 'No space left on device')
        def __getattr__(self, k): return getattr(self.f, k)

    @contextlib.contextmanager
    def full_disk(path, mode='w', **kw):
        with real(path, mode, **kw) as f: yield Full(f) if str(path).endswith('.safetensors') else f

    monkeypatch.setattr(checkpoint, 'atomic_write', full_disk)
    with pytest.raises(OSError, match='previous checkpoint is intact') as e:
        pipelines.train(tiny_cfg(data, tmp_path/'r'))
    assert e.value.errno == errno.ENOSPC
    monkeypatch.setattr(checkpoint, 'atomic_write', real)
    assert (tmp_path/'r'/'last.safetensors').read_bytes() == before
    assert checkpoint.find_checkpoint(tmp_path/'r').name == 'epoch_001.json'
    assert not [p for p in (tmp_path/'r').rglob('*.tmp')]
    rep = pipelines.train(tiny_cfg(data, tmp_path/'r'))   # disk "freed": resumes and finishes
    assert 'uar' in rep


# ---------------------------------------------------------------- damaged and hostile files
def a3lign(*args):
    "`a3lign ARGS` through the command line's entry point, in this process (conftest's `run_cli`)."
    return run_cli(*args, check=False)


def one_line_error(p, *names):
    "Exit 2, no traceback, one `a3lign ...: error:` line naming the file(s); anything else on stderr is a one-line warning."
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    err = [l for l in lines if l.startswith('a3lign ') and ': error: ' in l]
    assert p.returncode == 2 and 'Traceback' not in p.stderr and len(err) == 1, p.stderr
    assert all(l.startswith('a3lign ') and (': error: ' in l or ': warning: ' in l) for l in lines), p.stderr
    for n in names: assert str(n) in err[0], (n, err[0])
    return err[0]


def cli_common(data, out):
    return ['--train-list', data/'train.txt', '--test-list', data/'test.txt', '--dataset', 'synthetic', '--backbone', 'a3lign-tiny',
            '--text-epochs', 1, '--image-epochs', 1, '--joint-epochs', 1, '--batch-size', 2, '--device', 'cpu', '--no-progress',
            '--max-frames', 16, '--model', 'num_sentences=2', '--model', 'tokens_per_sentence=4', '--out-dir', out]


def write_truncated_mp4(path, n=40, size=32):
    "An mp4 with its index in front (+faststart), cut after its first frames: it opens and its header says `n` frames."
    import av
    full = path.with_suffix('.full.mp4')
    with av.open(str(full), 'w', options={'movflags': 'faststart'}) as c:
        s = c.add_stream('libx264', rate=25); s.width = s.height = size; s.pix_fmt = 'yuv420p'
        for i in range(n):
            for pk in s.encode(av.VideoFrame.from_ndarray(np.full((size, size, 3), 5 * i, np.uint8), format='rgb24')): c.mux(pk)
        for pk in s.encode(): c.mux(pk)
    b = full.read_bytes(); path.write_bytes(b[:len(b) * 3 // 4]); full.unlink()
    return path


def test_truncated_mp4_named_or_counted_skip(tmp_path):
    "Issue 11.1: a truncated faststart mp4 is never padded: a named error, or with skip_bad a skip listed in the manifest."
    d = make_clips(tmp_path/'d', n_per_class=1)
    write_truncated_mp4(d/'clips'/'cut.mp4')
    with open(d/'train.txt', 'a') as f: f.write('clips/cut.mp4 40 1\n')
    assert V.count_frames(d/'clips'/'cut.mp4') == 40  # the header's promise
    with pytest.raises(V.VideoReadError, match='of the 40 its header promises'): V.count_frames(d/'clips'/'cut.mp4', decode=True)
    with pytest.raises(ClipLoadError, match=r'train.txt:3: .*cut.mp4.*truncated or corrupt'):
        pipelines.extract(tiny_cfg(d, tmp_path/'r', cache_dir=str(tmp_path/'c')))
    with pytest.warns(UserWarning, match='skipp'):
        c = pipelines.extract(tiny_cfg(d, tmp_path/'r', cache_dir=str(tmp_path/'c2'), skip_bad=True))
    sk = json.loads((tmp_path/'c2'/'manifest.json').read_text())['skipped']
    assert len(sk) == 1 and sk[0][1].endswith('train.txt:3') and 'truncated' in sk[0][2] and len(c.skipped) == 1
    recs = read_annotations(d/'train.txt')
    v = VideoClipDataset(recs, clip_transform_for(make_backbone('a3lign-tiny', None, 'cpu')), 4, max_frames=64)
    with pytest.raises(ClipLoadError, match='train.txt:3: .*truncated'): v.load(2)


def tiny_clip_state(seed=0):
    return make_backbone('a3lign-tiny', None, 'cpu', seed=seed).model.state_dict()


class Payload:
    "Unpickling this writes a marker file: proof of code run at load time."
    marker = None
    def __reduce__(self): return (builtins.open, (str(Payload.marker), 'w'))


def torchscript_archive(sd, path):
    "A TorchScript archive shaped like OpenAI's CLIP .pt files: nested modules holding the weights, plus int extras."
    root = torch.nn.Module()
    for key, t in sd.items():
        *mods, leaf = key.split('.')
        m = root
        for n in mods:
            if not hasattr(m, n): m.add_module(n, torch.nn.Module())
            m = getattr(m, n)
        m.register_parameter(leaf, torch.nn.Parameter(t.clone(), requires_grad=False))
    for k in ('input_resolution', 'context_length', 'vocab_size'): root.register_buffer(k, torch.tensor(7))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.jit.save(torch.jit.script(root), str(path))
    return path


def hostile_files(tmp_path):
    "Files that would run code if unpickled: plain pickle, torch.save zip, TorchScript archive with a payload, pickle named .safetensors."
    Payload.marker = tmp_path/'PWNED'
    out = {}
    out['pickle'] = tmp_path/'evil.pt'; out['pickle'].write_bytes(pickle.dumps({'visual.x': Payload()}))
    out['torch zip'] = tmp_path/'evil_zip.pt'; torch.save({'visual.x': Payload()}, out['torch zip'])
    ts = torchscript_archive({'a.w': torch.ones(2)}, tmp_path/'ts.pt')
    out['torchscript'] = tmp_path/'evil_ts.pt'
    with zipfile.ZipFile(ts) as zi, zipfile.ZipFile(out['torchscript'], 'w') as zo:
        for it in zi.infolist():
            zo.writestr(it, pickle.dumps(Payload(), protocol=2) if it.filename.endswith('/data.pkl') else zi.read(it))
    out['pickle as .safetensors'] = tmp_path/'evil.safetensors'; out['pickle as .safetensors'].write_bytes(pickle.dumps(Payload()))
    out['truncated safetensors'] = tmp_path/'cut.safetensors'
    from safetensors.torch import save_file
    save_file({'w': torch.ones(100)}, str(out['truncated safetensors']))
    out['truncated safetensors'].write_bytes(out['truncated safetensors'].read_bytes()[:-50])
    return out


def test_hostile_weights_never_run_code(tmp_path):
    "Issue 11.4: every hostile or damaged weights file is one WeightsFileError naming it; no payload ever runs."
    for kind, f in hostile_files(tmp_path).items():
        for load in (lambda: load_weights_file(f), lambda: load_backbone('a3lign-tiny', str(f))):
            with pytest.raises(WeightsFileError) as e: load()
            msg = str(e.value)
            assert msg.startswith(str(f)) and '\n' not in msg and 'weights_only=False' not in msg, (kind, msg)
        assert not Payload.marker.exists(), kind


def test_loader_owns_safety_on_any_open_clip(tmp_path, monkeypatch):
    "The package calls torch.load(weights_only=True) itself and never lets open_clip read a weights file."
    import open_clip, open_clip.factory
    sd = tiny_clip_state(seed=3)
    torch.save(sd, tmp_path/'w.pt')
    calls = []
    real = torch.load
    def spy(*a, **kw): calls.append(kw.get('weights_only')); return real(*a, **kw)
    def unsafe_open_clip(*a, **kw): raise AssertionError('open_clip must not read a weights file')
    monkeypatch.setattr(torch, 'load', spy)
    for mod in (open_clip, open_clip.factory):
        for fn in ('load_checkpoint', 'load_state_dict'): monkeypatch.setattr(mod, fn, unsafe_open_clip, raising=False)
    c = load_backbone('a3lign-tiny', str(tmp_path/'w.pt'))
    assert calls == [True]
    for k, v in c.model.state_dict().items(): assert torch.equal(v, sd[k]), k
    # the declared floors: torch where weights_only=True is the safe default (2.6, CVE-2025-32434); open_clip 3
    # (create_model(load_weights=False), local-dir:) so that no open_clip loader is ever needed
    req = configparser.ConfigParser(); req.read(Path(__file__).parents[1]/'settings.ini')
    floors = dict(re.findall(r'([\w-]+)>=([\d.]+)', req['DEFAULT']['requirements']))
    assert tuple(map(int, floors['torch'].split('.'))) >= (2, 6) and tuple(map(int, floors['open_clip_torch'].split('.'))) >= (3, 0)


def test_openai_torchscript_pt_loads_without_jit(tmp_path, monkeypatch):
    "An OpenAI-style TorchScript .pt (as ~/.cache/clip holds) loads through the restricted reader; torch.jit.load is never called."
    sd = tiny_clip_state(seed=4)
    f = torchscript_archive(sd, tmp_path/'ViT-tiny.pt')
    monkeypatch.setattr(torch.jit, 'load', lambda *a, **k: (_ for _ in ()).throw(AssertionError('no jit.load')))
    c = load_backbone('a3lign-tiny', str(f))
    for k, v in c.model.state_dict().items(): assert torch.equal(v, sd[k]), k


def test_cli_bad_weights_one_line_exit_2(tmp_path):
    "Issue 11.2: a corrupt or pickled --pretrained ends train and extract with one line and exit code 2."
    d = make_clips(tmp_path/'d', n_per_class=1)
    bad = hostile_files(tmp_path)
    one_line_error(a3lign('train', *cli_common(d, tmp_path/'r'), '--pretrained', bad['truncated safetensors']), bad['truncated safetensors'])
    one_line_error(a3lign('extract', *cli_common(d, tmp_path/'r'), '--pretrained', bad['torch zip']), bad['torch zip'], 'never runs code')
    assert not Payload.marker.exists()


def test_damaged_checkpoints_fall_back(data, tmp_path):
    "Issue 11.3: resume and eval skip a damaged checkpoint, saying which and why, and use the newest readable one."
    run = tmp_path/'r'
    pipelines.train(tiny_cfg(data, run, stop_after=2))
    ck = run/'checkpoints'
    # garbage bytes whose hash the JSON agrees with: must still be a CheckpointError, not a SafetensorError
    doc = json.loads((ck/'epoch_002.json').read_text())
    (ck/'epoch_002.safetensors').write_bytes(b'\xff' * 64)
    doc['sha256'] = hashlib.sha256(b'\xff' * 64).hexdigest(); (ck/'epoch_002.json').write_text(json.dumps(doc))
    with pytest.raises(checkpoint.CheckpointError, match='epoch_002.safetensors: not a readable checkpoint'): checkpoint.read_checkpoint(ck/'epoch_002.json')
    (run/'last.json').write_text('{"format": 1, "sha2')  # a torn last.json
    with pytest.warns(UserWarning, match=r'skipping checkpoint .*last.json: .*not a readable checkpoint.*Using .*epoch_001.json'):
        m = factory.load_checkpoint(run)
    assert m.checkpoint.endswith('epoch_001.json')
    with pytest.warns(UserWarning, match=r'skipping checkpoint .*epoch_002.json'):
        rep = pipelines.train(tiny_cfg(data, run))  # resumes from epoch 1 and finishes
    assert 'uar' in rep and rep['epoch'] == 4


def test_cli_eval_damaged_run(data, tmp_path):
    run = tmp_path/'r'
    pipelines.train(tiny_cfg(data, run, joint_epochs=1))
    (run/'last.safetensors').write_bytes(b'PK\x03\x04 not this')
    p = a3lign('eval', run, '--device', 'cpu', '--no-progress', '--out', tmp_path/'e.json')
    warn = [l for l in p.stderr.splitlines() if 'skipping checkpoint' in l]
    assert p.returncode == 0 and len(warn) == 1 and 'last' in warn[0], p.stderr  # fell back, said so
    assert warn[0].startswith('a3lign eval: warning: skipping checkpoint') and 'UserWarning' not in p.stderr  # one clean line
    for f in (run/'checkpoints').glob('*.safetensors'): f.write_bytes(b'\x80\x02junk')
    p = a3lign('eval', run, '--device', 'cpu', '--no-progress')
    line = one_line_error(p, run/'last.safetensors', 'no checkpoint is readable', 'last.json',
                          *[f'checkpoints/{f.name}' for f in (run/'checkpoints').glob('epoch_*.json')])
    assert len([l for l in p.stderr.splitlines() if l.strip()]) == 1, p.stderr  # no fallback warning before it (issue 21.6)
    assert 'use an older checkpoint' not in line  # there is none


def test_damaged_cache_shard_named_and_rebuilt(data, tmp_path):
    cache = tmp_path/'c'
    c = pipelines.extract(tiny_cfg(data, tmp_path/'r', cache_dir=str(cache), shard_size=2))
    good = c.get(0)[0].clone()
    shard_path(cache, 0).write_bytes(shard_path(cache, 0).read_bytes()[:100])  # cut short
    with pytest.raises(CacheShardError, match='shard_00000.safetensors: damaged cache shard.*rebuilds'): FeatureCache(cache).get(0)
    with pytest.warns(UserWarning, match='rebuilding 1 damaged shard'):
        c = pipelines.extract(tiny_cfg(data, tmp_path/'r', cache_dir=str(cache), shard_size=2))
    assert torch.equal(c.get(0)[0], good)
    shard_path(cache, 1).write_bytes(b'\xff' * 10)
    p = a3lign('train', *cli_common(data, tmp_path/'r2'), '--pretrained', 'none', '--cache-dir', cache, '--shard-size', 2)
    assert p.returncode == 0 and 'rebuilding 1 damaged shard' in p.stderr, p.stderr
