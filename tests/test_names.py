"""Every name the code uses exists and every import is used (pyflakes), and every `a3lign_nb` import in the
scripts beside the package (benchmarks, data_samples, .ci) still resolves after a move or a rename.

The scripts are not run by the suite (the benchmarks take minutes, some need a GPU), so a renamed function would
otherwise only show when someone runs them: `benchmarks/bench_train.py --only b` (which `gpu_check.sh` runs) still
imported `a3lign_nb.runs` after that module was split into `factory` and `pipelines`.
"""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = [p for d in ('benchmarks', 'data_samples', '.ci') for p in sorted((ROOT/d).rglob('*.py'))]
CHECKED = [ROOT/'a3lign_nb', ROOT/'tests', *SCRIPTS]


def flakes(paths) -> list[str]:
    "pyflakes' messages as 'file:line: text' (undefined names, unused imports and variables, ...)."
    from pyflakes import api, reporter

    class Collect(reporter.Reporter):
        def __init__(self): self.found = []
        def flake(self, m): self.found.append(f'{m.filename}:{m.lineno}: {m.message % m.message_args}')
        def syntaxError(self, filename, msg, lineno, offset, text): self.found.append(f'{filename}:{lineno}: {msg}')
        def unexpectedError(self, filename, msg): self.found.append(f'{filename}: {msg}')

    rep = Collect()
    api.checkRecursive([str(p) for p in paths], rep)
    return [f for f in rep.found if '_modidx.py' not in f]  # nbdev's generated index


def test_flake_free():
    """No undefined name, no unused import or variable: in the library (fix it in the notebook, then nbdev_export),
    the tests and the scripts. An import made only to see that a package is there is `importlib.import_module(...)`."""
    found = flakes(CHECKED)
    assert not found, '\n'.join(found)


def test_flakes_are_found(tmp_path):
    "The check itself: a name used but never defined, and an import never used, are reported with their lines."
    (tmp_path/'bad.py').write_text('import os\n\ndef f(backbone):\n    return clip.name\n')
    found = flakes([tmp_path])
    assert len(found) == 2 and any('bad.py:1' in f and "'os'" in f for f in found), found
    assert any('bad.py:4' in f and "'clip'" in f for f in found), found


def package_imports(path: Path) -> list[tuple[int, str, str | None]]:
    "(line, module, name) of every `import a3lign_nb...` / `from a3lign_nb... import name` in a file, functions included."
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'))):
        if isinstance(node, ast.ImportFrom) and not node.level and (node.module or '').split('.')[0] == 'a3lign_nb':
            out += [(node.lineno, node.module, a.name) for a in node.names]
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name, None) for a in node.names if a.name.split('.')[0] == 'a3lign_nb']
    return out


def test_scripts_import_what_exists():
    assert SCRIPTS, 'no scripts found beside the package'
    missing = []
    for p in SCRIPTS:
        for line, mod, name in package_imports(p):
            where = f'{p.relative_to(ROOT)}:{line}'
            try: m = importlib.import_module(mod)
            except ImportError as e:
                missing.append(f'{where}: no module {mod} ({e})'); continue
            if name is None or name == '*' or hasattr(m, name): continue
            try: importlib.import_module(f'{mod}.{name}')  # a submodule: `from a3lign_nb import factory`
            except ImportError: missing.append(f'{where}: {mod} has no {name}')
    assert not missing, 'imports that no longer resolve (a module or name was moved or renamed):\n' + '\n'.join(missing)


def test_script_imports_are_read(tmp_path):
    "The check itself: imports inside functions and of submodules are seen."
    (tmp_path/'s.py').write_text('def f():\n    from a3lign_nb import runs\n    import a3lign_nb.factory\n')
    assert package_imports(tmp_path/'s.py') == [(2, 'a3lign_nb', 'runs'), (3, 'a3lign_nb.factory', None)]
    with pytest.raises(ImportError): importlib.import_module('a3lign_nb.runs')
