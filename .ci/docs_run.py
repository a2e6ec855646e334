"""The docs build's notebook runner, in the worker processes of `.ci/build_docs.py`.

Each notebook runs in a fresh IPython shell (execnb's `CaptureShell`, as `nbdev_test` runs them) inside a worker
process that outlives it, so torch, open_clip and plotly are imported once per worker, not once per notebook (with a
kernel per notebook, the notebooks took 162 s of a 178 s build on 2 cores; now 71 s). The cells `nbdev_test` skips
are skipped; a notebook past its time limit is stopped inside its running cell by a signal; what native code writes
to the process's stdout and stderr (decord's log) goes to the notebook's log file, never to a page.

A module of its own so that the worker processes (started with `spawn`) can import it by name.
"""
from __future__ import annotations

import faulthandler
import os
import re
import signal
import sys
import time
from pathlib import Path


def _src(cell) -> str:
    return ''.join(cell['source']) if isinstance(cell['source'], list) else cell['source']


def _directives(src: str) -> dict[str, list[str]]:
    "The `#| name args` lines at the top of a cell (nbdev's directives)."
    out = {}
    for line in src.splitlines():
        m = re.match(r'\s*#\|\s*([\w\-]+:?)\s*(.*)', line)
        if not m:
            if line.strip(): break
            continue
        out[m.group(1)] = m.group(2).split()
    return out


def _skip(cell, flags: set[str]) -> bool:
    "Cells `nbdev_test` would not run: a test flag not asked for, `#| eval: false`, `nbdev_export()`."
    if cell['cell_type'] != 'code': return False
    src = _src(cell)
    if 'nbdev_export' + '(' in src: return True
    d = _directives(src)
    if (d.get('eval:') or [''])[0].lower() == 'false': return True
    return bool(flags & d.keys())


class NotebookTimeout(BaseException):
    "Raised inside the running cell when its notebook is past its time limit (a BaseException, as KeyboardInterrupt is)."


def worker_init(root: str, start_method: str) -> None:
    """A worker process: this checkout's package before any installed copy, and the start method a kernel would
    have (`spawn` started this process and would otherwise be the default of its children, so a DataLoader worker
    could not find a dataset class defined in a notebook)."""
    import multiprocessing
    sys.path.insert(0, root)
    multiprocessing.set_start_method(start_method, force=True)


def _cell_error(nb) -> str:
    "The failing cell's source and the end of its traceback, as text (execnb keeps them in the cell's outputs)."
    for c in nb.cells:
        for o in c.get('outputs', []):
            if o.get('output_type') == 'error':
                tb = re.sub(r'\x1b\[[0-9;]*m', '', '\n'.join(o.get('traceback', [])))
                return f'in the cell:\n{_src(c)[:800]}\n{tb[-2500:]}'
    return ''


def run_notebook(src: Path, dst: Path, flags: set[str], timeout: float, log: Path) -> tuple[bool, float, str]:
    """Run `src` in a fresh IPython shell of this process, in its own folder; write it with its outputs to `dst`.

    Returns (ok, seconds, error). The error names the failing cell, or says the notebook ran past `timeout` seconds;
    a cell stuck where no signal reaches it (native code) ends the process 60 s later (the caller names it)."""
    import nbformat
    from execnb.nbio import read_nb
    from execnb.shell import CaptureShell
    nb = read_nb(src)
    log.parent.mkdir(parents=True, exist_ok=True)
    cwd, timed_out = os.getcwd(), []

    def on_alarm(signum, frame):
        timed_out.append(True)
        raise NotebookTimeout(f'{src.name} ran past its {timeout:.0f} s limit')

    t0, err = time.perf_counter(), ''
    sys.stdout.flush(); sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    alarm = hasattr(signal, 'setitimer')  # not on Windows: there only the hard limit below ends a notebook
    old_handler = signal.signal(signal.SIGALRM, on_alarm) if alarm else None
    with open(log, 'w', encoding='utf-8') as fh:
        os.dup2(fh.fileno(), 1); os.dup2(fh.fileno(), 2)  # native writes while this notebook runs: its log
        faulthandler.dump_traceback_later(timeout + 60, exit=True, file=fh)
        if alarm: signal.setitimer(signal.ITIMER_REAL, max(float(timeout), 0.001))
        try:
            os.chdir(src.parent)
            CaptureShell().run_all(nb, exc_stop=True, preproc=lambda c: _skip(c, flags))
        except BaseException as e:  # a failing cell (its traceback is in its outputs), or the time limit
            err = (f'ran past its {timeout:.0f} s limit (--timeout)' if timed_out
                   else f'{type(e).__name__}: {e}\n{_cell_error(nb)}')
        finally:
            if alarm: signal.setitimer(signal.ITIMER_REAL, 0)
            faulthandler.cancel_dump_traceback_later()
            if alarm: signal.signal(signal.SIGALRM, old_handler)
            os.chdir(cwd)
            sys.stdout.flush(); sys.stderr.flush()
            os.dup2(saved[0], 1); os.dup2(saved[1], 2)
            os.close(saved[0]); os.close(saved[1])
    if err: err += f'\n(what native code printed while it ran: {log})'
    dst.parent.mkdir(parents=True, exist_ok=True)
    # nbformat, not execnb's write_nb: that one splits every nested 'source' string into lines, a plotly image's too
    doc = {k: v for k, v in nb.items() if not k.endswith('_')}
    doc['cells'] = [{k: v for k, v in c.items() if not k.endswith('_')} for c in nb.cells]
    nbformat.write(nbformat.from_dict(doc), dst)
    return not err, time.perf_counter() - t0, err
