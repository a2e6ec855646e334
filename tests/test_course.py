"""The course's shape, as issue 22 set it: the learn path's lessons open with their idea and end with exercises whose
solutions check themselves, the path stays short, and no cell is too long to read.

`nbdev_test` runs every solution (each is a code cell, `#| code-fold: true`, that asserts what it finds); these tests
check that the exercises are there and shaped so. Word counts are of markdown prose, code blocks left out.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NBS = Path(__file__).resolve().parent.parent/'nbs'
LEARN = ['index', '05_tutorial', '20_models.mat', '21_models.jas', '22_models.a3lign', '41_train.bap',
         '61_explore.tokens', '62_explore.time', '06_own_video']  # the "Learn the method" path, in reading order
CORE_WORDS = 8_500  # the "about 8,000 words of prose" on the learn path
BEFORE_MAT = 3_300  # the "MAT's first code within about 3,000 words of prose from the top of the index"
MAX_LINES = 65  # the "no cell over about 60 lines"


def cells(name: str) -> list[dict]:
    return json.loads((NBS/f'{name}.ipynb').read_text(encoding='utf-8'))['cells']


def src(c: dict) -> str: return ''.join(c['source'])


def words(text: str) -> int:
    text = re.sub(r'```.*?```', '', text, flags=re.S)  # code blocks are not prose
    text = re.sub(r'<details>.*?</details>', '', text, flags=re.S)  # nor the self-check's folded answers
    return len(re.findall(r"[A-Za-z][A-Za-z'\-]*", text))


def prose(name: str) -> int: return sum(words(src(c)) for c in cells(name) if c['cell_type'] == 'markdown')


def test_learn_path_is_in_the_sidebar_order():
    side = NBS/'sidebar.yml'
    if not side.exists(): pytest.skip('no nbs/sidebar.yml')
    order = re.findall(r'([\w.]+)\.ipynb', side.read_text(encoding='utf-8'))
    assert order[:len(LEARN)] == [f'{n}' for n in LEARN], order[:len(LEARN)]


def test_learn_path_is_short():
    per = {n: prose(n) for n in LEARN}
    assert sum(per.values()) <= CORE_WORDS, per
    mat = cells('20_models.mat')
    first = next(i for i, c in enumerate(mat) if c['cell_type'] == 'code' and '#| export' in src(c))
    before = per['index'] + per['05_tutorial'] + sum(words(src(c)) for c in mat[:first] if c['cell_type'] == 'markdown')
    assert before <= BEFORE_MAT, f'{before} words of prose before MAT\'s first code'


@pytest.mark.parametrize('name', LEARN[1:])
def test_lesson_opens_with_its_idea_and_ends_with_exercises(name):
    cs = cells(name)
    heads = [i for i, c in enumerate(cs) if c['cell_type'] == 'markdown' and re.search(r'^#+ .*[Ee]xercise', src(c), re.M)]
    assert heads, f'{name}: no "Exercises" heading'
    tail = cs[heads[-1]:]
    solutions = [src(c) for c in tail if c['cell_type'] == 'code' and src(c).lstrip().startswith('#| code-fold: true')]
    assert len(solutions) >= 2, f'{name}: {len(solutions)} worked solutions after the exercises heading'
    assert all(re.search(r'\bassert\b|test_eq|test_close|test_fail', s) for s in solutions), \
        f'{name}: a solution that checks nothing'
    assert any('<details' in src(c) for c in tail if c['cell_type'] == 'markdown'), f'{name}: no self-check'


@pytest.mark.parametrize('path', sorted(NBS.glob('*.ipynb')), ids=lambda p: p.stem)
def test_no_cell_is_too_long(path):
    long = [(c.get('id'), len(src(c).splitlines())) for c in cells(path.stem)
            if c['cell_type'] == 'code' and len(src(c).splitlines()) > MAX_LINES]
    assert not long, f'{path.name}: cells over {MAX_LINES} lines: {long}'
