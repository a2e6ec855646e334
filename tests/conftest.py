"""Shared helpers and fixtures of the pytest suite, and the `slow` marker.

What lives where: a notebook tests what its lesson teaches, beside the code, on tiny inputs, in seconds. `tests/`
holds what a lesson cannot show: the command line and its exit codes, several processes (torchrun, signals),
hostile and damaged files, fuzzing, the browser, whole runs across modules, and the package's structure (layers).

`pytest tests` (the README's test command) leaves out the tests marked `slow` (a browser on a built docs site,
JupyterLab, torchrun): `pytest tests --slow` runs them too, `pytest tests --slow -m slow` only them; `.ci/run` runs both.
"""
from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import pytest


def pytest_addoption(parser):
    parser.addoption('--slow', action='store_true', default=False, help='also run the tests marked slow (CI runs them)')


def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: minutes of CPU or a browser/server; left out unless --slow')


def pytest_collection_modifyitems(config, items):
    if config.getoption('--slow'): return
    skip = pytest.mark.skip(reason='slow: run with --slow (CI does)')
    for it in items:
        if 'slow' in it.keywords: it.add_marker(skip)


def make_clips(out: Path, n_per_class: int = 3, classes: int = 2, frames=(10, 20, 70), size: int = 32) -> Path:
    "Tiny mp4 clips (the class is the direction a bright bar moves) + train.txt / test.txt lists."
    import av
    out = Path(out); (out/'clips').mkdir(parents=True, exist_ok=True)
    k = 0
    for split in ('train', 'test'):
        lines = []
        for c in range(classes):
            for j in range(n_per_class):
                n = frames[k % len(frames)]; k += 1
                p = out/'clips'/f'{split}_{c}_{j}.mp4'
                with av.open(str(p), 'w') as cont:
                    s = cont.add_stream('libx264', rate=10); s.width = s.height = size; s.pix_fmt = 'yuv420p'
                    for t in range(n):
                        img = np.full((size, size, 3), 30 + 20 * j, np.uint8)
                        x = int(t / n * (size - 4)); x = x if c == 0 else size - 4 - x
                        img[:, x:x + 4] = 220
                        for pk in s.encode(av.VideoFrame.from_ndarray(img, format='rgb24')): cont.mux(pk)
                    for pk in s.encode(): cont.mux(pk)
                lines.append(f'clips/{p.name} {n} {c}')
        (out/f'{split}.txt').write_text('\n'.join(lines) + '\n')
    return out


def tiny_cfg(data: Path, out: Path, **kw):
    "A run of 1 + 1 + 2 epochs of the tiny CLIP (random weights) on the tiny clips."
    from a3lign_nb.models.a3lign import A3lignConfig
    from a3lign_nb.train.config import TrainConfig
    base = dict(dataset='synthetic', train_list=str(data/'train.txt'), test_list=str(data/'test.txt'),
                pretrained='none', text_epochs=1, image_epochs=1, joint_epochs=2,
                batch_size=2, device='cpu', progress=False, max_frames=16, out_dir=str(out),
                model=A3lignConfig(backbone='a3lign-tiny', num_sentences=2, tokens_per_sentence=4))
    return TrainConfig(**{**base, **kw})


class CliResult:
    def __init__(self, code, stdout, stderr): self.returncode, self.stdout, self.stderr = code, stdout, stderr
    def __repr__(self): return f'exit {self.returncode}\n--- stdout\n{self.stdout[-3000:]}\n--- stderr\n{self.stderr[-3000:]}'


def run_cli(*args, check: bool = True) -> CliResult:
    "`a3lign ARGS` in this process (`cli.main`): exit code, stdout and stderr, as the console script would give them."
    from a3lign_nb.cli import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try: code = main([str(a) for a in args])
        except SystemExit as e: code = e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    r = CliResult(code, out.getvalue(), err.getvalue())
    if check and code != 0: raise AssertionError(repr(r))
    return r


@pytest.fixture(scope='session')
def clips(tmp_path_factory) -> Path:
    "Tiny clips shared by the session (read only: copy them before damaging any)."
    return make_clips(tmp_path_factory.mktemp('clips'))


@pytest.fixture(scope='session')
def small_clips(tmp_path_factory) -> Path:
    "Fewer tiny clips (2 per class), shared by the session (read only)."
    return make_clips(tmp_path_factory.mktemp('small_clips'), n_per_class=2)


@pytest.fixture(scope='session')
def trained_run(tmp_path_factory, clips) -> Path:
    "One finished tiny run (1 + 1 + 2 epochs), shared by the session: read it, never write into it."
    from a3lign_nb.pipelines import train
    out = tmp_path_factory.mktemp('trained')/'run'
    train(tiny_cfg(clips, out))
    return out
