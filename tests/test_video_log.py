"""decord's C++ log stays out of the terminal and the notebooks when a failure is expected and handled.

decord (and the FFmpeg inside it) write to file descriptor 2 directly, below Python's `sys.stderr`, so
the check runs the reader in a subprocess and reads what reached that process's real stderr.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOISE = ('moov atom not found', 'ERROR opening', 'video_reader.cc')

pytest.importorskip('decord', reason='decord has no wheel for this platform; PyAV alone prints nothing here')


def _run(code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get('PYTHONPATH')] if p]),
               OMP_NUM_THREADS='1')
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)


def test_handled_decord_failures_print_nothing(tmp_path):
    "Not-a-video and truncated files: each read is a VideoReadError carrying decord's words; fd 2 stays empty."
    r = _run(f'''
        import av, numpy as np
        from pathlib import Path
        from a3lign_nb.data.video import read_frames, count_frames, VideoReadError
        tmp = Path({str(tmp_path)!r})
        (tmp / 'junk.mp4').write_bytes(b'not a video' * 100)
        with av.open(str(tmp / 'full.mp4'), 'w', options={{'movflags': 'faststart'}}) as c:
            s = c.add_stream('libx264', rate=25); s.width = s.height = 32; s.pix_fmt = 'yuv420p'
            for i in range(40):
                for p in s.encode(av.VideoFrame.from_ndarray(np.full((32, 32, 3), 6 * i, np.uint8), format='rgb24')): c.mux(p)
            for p in s.encode(): c.mux(p)
        full = (tmp / 'full.mp4').read_bytes()
        (tmp / 'half.mp4').write_bytes(full[:len(full) * 3 // 4])
        msgs = []
        for name in ('junk.mp4', 'half.mp4'):
            for backend in ('auto', 'decord'):
                try: read_frames(tmp / name, list(range(0, 40, 3)), backend=backend)
                except VideoReadError as e: msgs.append(str(e))
                else: raise SystemExit(f'{{name}} read without an error')
        try: count_frames(tmp / 'junk.mp4', backend='decord')
        except VideoReadError as e: msgs.append(str(e))
        assert read_frames(tmp / 'half.mp4', [0, 1]).shape[0] == 2   # a read that works: still fine
        # a dataset that skips bad clips (the handled case in training): a warning, no decord lines
        import warnings
        from a3lign_nb.data.datasets import ClipDataset, ClipRecord
        from a3lign_nb.data.video import ClipTransform
        recs = [ClipRecord(tmp / 'junk.mp4', 40, 0, 'list:1'), ClipRecord(tmp / 'full.mp4', 40, 1, 'list:2')]
        with warnings.catch_warnings(record=True):
            warnings.simplefilter('always')
            item = ClipDataset(recs, transform=ClipTransform(32), skip_bad=True)[0]
        assert item['label'] == 1, item['label']
        assert any('(decord: moov atom not found' in m for m in msgs), msgs
        print('\\n'.join(msgs))
    ''', tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    print(r.stdout)
    leaked = [line for line in r.stderr.splitlines() if any(n in line for n in NOISE)]
    assert not leaked, f'decord log lines reached stderr: {leaked}'


def test_decord_log_is_kept_when_the_read_works(tmp_path):
    "What decord prints during a call that succeeds still reaches stderr (nothing is swallowed)."
    r = _run('''
        import os
        from pathlib import Path
        from a3lign_nb.data.video import _decord_call
        def talk(): os.write(2, b'decord says hello\\n'); return 7
        assert _decord_call(Path('x.mp4'), 'open', talk) == 7
    ''', tmp_path)
    assert r.returncode == 0, r.stderr
    assert 'decord says hello' in r.stderr
