"""The package is layered: a module imports only from its own layer or the ones below, and nothing imports in a cycle.

The layers, bottom up (DESIGN.md): utilities and processes, the backbone, data, models, evaluation metrics and
figures, training, the factory, then the ablation study and the explorers (both build from the factory), the
pipelines, and the command line on top. The lessons follow the same order: a notebook that exports a module imports
only from notebooks numbered before it (the tutorial and the course map, which export nothing, may import anything).
"""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT/'a3lign_nb'

LAYERS = [  # (layer, module-name prefixes); the first prefix that matches a module decides its layer
    ('base', ['utils', 'dist']),
    ('backbone', ['backbone', 'testing']),
    ('data', ['data']),
    ('models', ['models']),
    ('eval', ['eval']),
    ('train', ['train']),
    ('factory', ['factory']),
    ('study', ['ablate', 'explore']),
    ('pipelines', ['pipelines', 'prepare', 'predict', 'export']),
    ('cli', ['cli']),
]
RANK = {name: i for i, (name, _) in enumerate(LAYERS)}


def layer_of(mod: str) -> str:
    "`mod` is a dotted name inside the package, e.g. 'train.loop'."
    for name, prefixes in LAYERS:
        if any(mod == p or mod.startswith(p + '.') for p in prefixes): return name
    raise AssertionError(f'a3lign_nb.{mod} is in no layer: add it to LAYERS in {Path(__file__).name}')


def modules() -> dict[str, Path]:
    out = {}
    for p in PKG.rglob('*.py'):
        rel = p.relative_to(PKG).with_suffix('')
        if rel.name in ('_modidx',): continue
        parts = rel.parts[:-1] if rel.name == '__init__' else rel.parts
        if parts: out['.'.join(parts)] = p
    return out


def imports_of(mod: str, path: Path, known: set[str]) -> set[str]:
    "Package modules that `mod` imports anywhere in its file (top level or inside functions)."
    pkg = mod.split('.')[:-1] if path.name != '__init__.py' else mod.split('.')
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'))):
        names = []
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[:len(pkg) - node.level + 1] if node.level > 1 else pkg
                target = '.'.join(base + ([node.module] if node.module else []))
            elif node.module and node.module.split('.')[0] == 'a3lign_nb':
                target = node.module[len('a3lign_nb.'):] if node.module != 'a3lign_nb' else ''
            else: continue
            names = [f'{target}.{a.name}'.strip('.') for a in node.names] + [target]
        elif isinstance(node, ast.Import):
            names = [a.name[len('a3lign_nb.'):] for a in node.names if a.name.startswith('a3lign_nb.')]
        for n in names:
            if n in known and n != mod: found.add(n)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {m: imports_of(m, p, set(mods)) for m, p in mods.items()}


def test_no_import_from_a_higher_layer():
    bad = [f'a3lign_nb.{m} ({layer_of(m)}) imports a3lign_nb.{d} ({layer_of(d)})'
           for m, deps in graph().items() if m.split('.')[0] not in ('', '__init__') for d in deps
           if RANK[layer_of(d)] > RANK[layer_of(m)]]
    assert not bad, 'imports up the layers:\n' + '\n'.join(sorted(bad))


def find_cycle(g: dict[str, set[str]]) -> list[str] | None:
    state, stack = {}, []
    def visit(n):
        state[n] = 1; stack.append(n)
        for d in sorted(g.get(n, ())):
            if state.get(d) == 1: return stack[stack.index(d):] + [d]
            if d not in state and (c := visit(d)): return c
        state[n] = 2; stack.pop()
    for n in sorted(g):
        if n not in state and (c := visit(n)): return c
    return None


def test_no_import_cycle():
    cyc = find_cycle(graph())
    assert cyc is None, 'import cycle: ' + ' -> '.join(cyc)


def test_the_checks_can_fail():
    "The walkers see a planted upward import and a planted cycle."
    assert find_cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}) == ['a', 'b', 'c', 'a']
    assert find_cycle({'a': {'b'}, 'b': set()}) is None
    assert RANK[layer_of('train.loop')] > RANK[layer_of('eval.metrics')] > RANK[layer_of('models.mat')]
    src = 'from ..pipelines import train\ndef f():\n    from ..factory import build_model\n'
    p = ROOT/'test-output'/'planted'/'train'/'x.py'
    p.parent.mkdir(parents=True, exist_ok=True); p.write_text(src)
    assert imports_of('train.x', p, {'pipelines', 'factory'}) == {'pipelines', 'factory'}


NB = ROOT/'nbs'


def lesson_modules() -> dict[str, str]:
    "module -> the notebook that exports it."
    out = {}
    for nb in sorted(NB.glob('[0-9]*.ipynb')):
        for c in json.loads(nb.read_text(encoding='utf-8'))['cells']:
            m = re.search(r'^#\|\s*default_exp\s+(\S+)', ''.join(c['source']), re.M)
            if m: out[m.group(1)] = nb.name; break
    return out


def test_lessons_import_only_earlier_lessons():
    owner = lesson_modules()
    bad = []
    for nb in sorted(NB.glob('[0-9]*.ipynb')):
        if nb.name not in owner.values(): continue  # the tutorial exports nothing: it may use the whole library
        for c in json.loads(nb.read_text(encoding='utf-8'))['cells']:
            if c['cell_type'] != 'code': continue
            for mod in re.findall(r'^\s*from a3lign_nb\.([\w.]+) import', ''.join(c['source']), re.M):
                src = owner.get(mod)
                if src is not None and src > nb.name: bad.append(f'{nb.name} imports a3lign_nb.{mod} from the later lesson {src}')
    assert not bad, '\n'.join(bad)
