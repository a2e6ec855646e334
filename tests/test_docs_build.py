"""The docs build runs notebooks the way `nbdev_test` does, and names every notebook that fails.

Runs `.ci/build_docs.py`'s notebook runner (worker processes, a fresh IPython shell per notebook, as `nbdev_test`) on
tiny notebooks in a temp folder; the whole site is built and checked in a browser by test_browser.py.
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytest.importorskip('execnb')


def _build_docs():
    spec = importlib.util.spec_from_file_location('build_docs', ROOT/'.ci'/'build_docs.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _nb(path: Path, *sources: str) -> Path:
    cells = [{'cell_type': 'code', 'id': f'c{i}', 'metadata': {}, 'outputs': [], 'execution_count': None, 'source': s}
             for i, s in enumerate(sources)]
    path.write_text(json.dumps({'cells': cells, 'metadata': {'kernelspec': {'name': 'python3', 'display_name': 'Python 3',
                    'language': 'python'}}, 'nbformat': 4, 'nbformat_minor': 5}))
    return path


def test_runner_skips_flagged_cells_keeps_figures_and_names_failures(tmp_path, monkeypatch):
    bd = _build_docs()
    monkeypatch.chdir(ROOT)  # nbdev's settings.ini (the test flags)
    src, dest = tmp_path/'nbs', tmp_path/'run'
    src.mkdir()
    _nb(src/'10_good.ipynb', 'print("hello")',
        '#| slow\nraise RuntimeError("a slow cell must not run")',
        '#| eval: false\nraise RuntimeError("eval: false must not run")',
        'import plotly.graph_objects as go\ngo.Figure(go.Scatter(y=[1, 3, 2])).show()')
    _nb(src/'20_bad.ipynb', 'x = 1', 'raise ValueError("boom in the lesson")')
    with pytest.raises(SystemExit) as e:
        bd.run_notebooks(src, dest, None, jobs=2, timeout=120)
    msg = str(e.value)
    assert '1 notebook(s) failed' in msg and '20_bad.ipynb' in msg and 'boom in the lesson' in msg, msg
    assert '10_good.ipynb' not in msg.split('\n')[0], msg
    good = json.loads((dest/'10_good.ipynb').read_text())
    outs = [c['outputs'] for c in good['cells']]
    assert outs[0][0]['text'] == ['hello\n'] or ''.join(outs[0][0]['text']) == 'hello\n', outs[0]
    assert outs[1] == [] and outs[2] == [], 'a flagged or eval: false cell ran'
    assert bd.PLOTLY_MIME in outs[3][0]['data'], outs[3]
    # the page writer turns the figure JSON into a Plotly.newPlot call against the site's plotly.js
    import nbformat
    nb = nbformat.read(dest/'10_good.ipynb', as_version=4)
    assert bd._offline_outputs(nb) == 1
    html = nb.cells[3].outputs[0]['data']['text/html']
    assert 'Plotly.newPlot' in html and 'cdn' not in html.lower()
    assert not list(src.glob('*.ipynb.*')) and json.loads((src/'10_good.ipynb').read_text())['cells'][0]['outputs'] == [], \
        'the source notebooks were written to'


def test_runner_names_a_notebook_past_its_time_limit(tmp_path, monkeypatch):
    bd = _build_docs()
    monkeypatch.chdir(ROOT)
    src = tmp_path/'nbs'
    src.mkdir()
    _nb(src/'30_slow.ipynb', 'import time\ntime.sleep(300)')
    with pytest.raises(SystemExit) as e:
        bd.run_notebooks(src, tmp_path/'run', None, jobs=1, timeout=6)  # the limit, not the sleep, ends it
    assert '30_slow.ipynb' in str(e.value) and 'limit' in str(e.value), str(e.value)


def test_runner_isolates_notebooks_in_a_shared_worker(tmp_path, monkeypatch):
    """One worker runs both notebooks: the second sees none of the first's names, native writes go to the log, not
    a page, and a DataLoader worker finds a dataset class defined in the notebook (the start method of a kernel)."""
    bd = _build_docs()
    monkeypatch.chdir(ROOT)
    src, dest = tmp_path/'nbs', tmp_path/'run'
    src.mkdir()
    _nb(src/'10_first.ipynb', 'secret = 42\nimport os\nos.write(2, b"native noise from 10\\n")\nprint("first ran")')
    _nb(src/'20_second.ipynb', 'assert "secret" not in globals(), "names leaked from the previous notebook"',
        'import torch\nclass Squares(torch.utils.data.Dataset):\n'
        '    def __len__(self): return 4\n    def __getitem__(self, i): return i * i\n'
        'print(sorted(int(x) for x in torch.utils.data.DataLoader(Squares(), batch_size=None, num_workers=1)))')
    bd.run_notebooks(src, dest, None, jobs=1, timeout=120)
    first, second = (json.loads((dest/n).read_text()) for n in ('10_first.ipynb', '20_second.ipynb'))
    assert ''.join(first['cells'][0]['outputs'][0]['text']) == 'first ran\n', first['cells'][0]['outputs']
    assert 'native noise' not in json.dumps([c['outputs'] for nb in (first, second) for c in nb['cells']])
    assert 'native noise from 10' in (dest/'_logs'/'10_first.log').read_text()
    assert ''.join(second['cells'][1]['outputs'][0]['text']) == '[0, 1, 4, 9]\n', second['cells'][1]['outputs']
    assert set(json.loads((dest/'_timings.json').read_text())) == {'10_first.ipynb', '20_second.ipynb'}


def test_runner_names_a_notebook_whose_process_dies(tmp_path, monkeypatch, capsys):
    "A crash in native code kills the worker: the notebook is named, and the others still run (longest first)."
    bd = _build_docs()
    monkeypatch.chdir(ROOT)
    src, dest = tmp_path/'nbs', tmp_path/'run'
    src.mkdir()
    _nb(src/'10_fine.ipynb', 'print("fine")')
    _nb(src/'20_crash.ipynb', 'import os\nos._exit(3)')
    _nb(src/'30_fine.ipynb', 'print("fine too")')
    dest.mkdir()
    (dest/'_timings.json').write_text(json.dumps({'30_fine.ipynb': 9.0, '10_fine.ipynb': 1.0}))
    with pytest.raises(SystemExit) as e:
        bd.run_notebooks(src, dest, None, jobs=1, timeout=60)
    msg = str(e.value)
    assert msg.startswith('1 notebook(s) failed') and '20_crash.ipynb' in msg and 'died' in msg, msg
    for name in ('10_fine.ipynb', '30_fine.ipynb'):
        assert 'fine' in json.dumps(json.loads((dest/name).read_text())['cells'][0]['outputs']), name
    out = capsys.readouterr().out
    assert out.index('30_fine.ipynb') < out.index('10_fine.ipynb'), out  # the last build's longest ran first


def test_module_docstrings_are_the_whole_summaries():
    "nbdev keeps only the first line of a notebook's `> summary` as the module docstring: one line each, then prose."
    import ast
    import re
    bad = []
    for nb_path in sorted((ROOT/'nbs').glob('[0-9]*.ipynb')):
        cells = json.loads(nb_path.read_text(encoding='utf-8'))['cells']
        src = [''.join(c['source']) for c in cells]
        exp = next((re.search(r'#\|\s*default_exp\s+(\S+)', s) for s in src if 'default_exp' in s), None)
        title = next((s for c, s in zip(cells, src) if c['cell_type'] == 'markdown' and s.lstrip().startswith('# ')), '')
        summary = [l for l in title.splitlines() if l.startswith('>')]
        if len(summary) != 1: bad.append(f'{nb_path.name}: the summary spans {len(summary)} lines'); continue
        if exp is None: continue
        mod = ROOT/'a3lign_nb'/(exp.group(1).replace('.', '/') + '.py')
        doc = ast.get_docstring(ast.parse(mod.read_text(encoding='utf-8')))
        if doc != summary[0][1:].strip(): bad.append(f'{mod.relative_to(ROOT)}: docstring {doc!r} is not the summary')
    assert not bad, '\n'.join(bad)


def test_imports_in_cells_of_their_own():
    "nbdev runs every cell that holds an import while it renders docs, without the cells before it: a cell that mixes"
    " imports with code using earlier variables breaks the docs build. Exported cells are exempt (they define the module)."
    import re
    bad = []
    for nb in sorted((ROOT/'nbs').glob('*.ipynb')):
        for i, c in enumerate(json.loads(nb.read_text(encoding='utf-8'))['cells']):
            s = ''.join(c['source'])
            if c['cell_type'] != 'code' or re.match(r'#\|\s*export', s): continue
            lines = [l for l in s.splitlines() if l.strip() and not l.lstrip().startswith('#')]
            imports = [l for l in lines if re.match(r'(import|from)\s+\S+', l)]
            if imports and len(imports) < len(lines): bad.append(f'{nb.name}, cell {i}: {imports[0]!r} beside other code')
    assert not bad, 'put imports in a cell of their own:\n' + '\n'.join(bad)


def test_every_public_function_has_docments():
    "Each parameter of a public function or method (two or more parameters) has its comment, which `show_doc` renders."
    import importlib
    import inspect
    import pkgutil
    import a3lign_nb
    from fastcore.docments import docments
    missing = []
    for m in pkgutil.walk_packages(a3lign_nb.__path__, 'a3lign_nb.'):
        if m.name.endswith('_modidx'): continue
        mod = importlib.import_module(m.name)
        for name in getattr(mod, '__all__', []):
            obj = getattr(mod, name, None)
            fns = [(name, obj)] if inspect.isfunction(obj) and obj.__module__ == mod.__name__ else []
            if inspect.isclass(obj) and obj.__module__ == mod.__name__:
                for k, v in vars(obj).items():
                    f = v.__func__ if isinstance(v, (classmethod, staticmethod)) else v
                    if inspect.isfunction(f) and (not k.startswith('_') or k == '__init__'): fns.append((f'{name}.{k}', f))
            for n, f in fns:
                ps = [p for p, v in inspect.signature(f).parameters.items()
                      if p not in ('self', 'cls') and v.kind not in (v.VAR_KEYWORD, v.VAR_POSITIONAL)]
                if len(ps) < 2: continue
                try: inspect.getsource(f)
                except (OSError, TypeError): continue  # generated (a dataclass's __init__): its fields carry the comments
                d = docments(f)
                if [p for p in ps if not d.get(p)]: missing.append(f'{m.name}.{n}: {[p for p in ps if not d.get(p)]}')
    assert not missing, 'parameters without a comment:\n' + '\n'.join(missing)


def test_image_figures_keep_their_source_string(tmp_path):
    """nbdev's docs processing writes notebooks with execnb's `write_nb`, which splits every nested key named `source`
    into lines, a plotly image's `data:image/...` URL too (plotly.js draws nothing for a list): the page writer joins
    it back, in image traces, `layout.images` and animation frames."""
    import nbformat
    import numpy as np
    import plotly.express as px
    import plotly.graph_objects as go
    import re
    from execnb.nbio import read_nb, write_nb
    bd = _build_docs()
    img = np.random.default_rng(0).integers(0, 255, (8, 12, 3), dtype=np.uint8)
    figs = [px.imshow(img, binary_format='jpg'), px.imshow(np.stack([img, img[::-1]]), animation_frame=0),
            go.Figure(go.Scatter(y=[1, 2])).add_layout_image(source=px.imshow(img).data[0].source, x=0, y=1)]
    cells = [{'cell_type': 'code', 'id': f'c{i}', 'metadata': {}, 'execution_count': 1, 'source': 'fig.show()',
              'outputs': [{'output_type': 'display_data', 'metadata': {}, 'data': {bd.PLOTLY_MIME: f.to_plotly_json()}}]}
             for i, f in enumerate(figs)]
    src = tmp_path/'figs.ipynb'
    src.write_text(json.dumps({'cells': cells, 'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5}))
    write_nb(read_nb(src), tmp_path/'proc.ipynb')  # what nbdev's proc_nbs does
    proc = json.loads((tmp_path/'proc.ipynb').read_text())
    assert isinstance(proc['cells'][0]['outputs'][0]['data'][bd.PLOTLY_MIME]['data'][0]['source'], list), \
        'execnb no longer splits nested sources: _join_sources may be unneeded'
    nb = nbformat.read(tmp_path/'proc.ipynb', as_version=4)
    assert bd._offline_outputs(nb) == 3
    for c in nb.cells:
        div = c.outputs[0]['data']['text/html']
        assert re.search(r'"source":\s*"data:image(/|\\u002f)', div) and not re.search(r'"source":\s*\[', div), div[:400]
