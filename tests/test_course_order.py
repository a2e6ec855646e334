"""The docs site's reading order, `nbs/sidebar.yml`: two paths, every notebook once.

Notebook numbers are the build/layer order; the sidebar is the order to read them in: "Learn the method" first
(the course map, the tutorial, the three parts of the method, the explorers, a real video), then "Run it for
real" (the ablation table, then the library from the bottom up). The docs build reads the same file
(`.ci/build_docs.py`: the fallback site's nav and its previous/next links; quarto's sidebar and page navigation).
"""
from __future__ import annotations

import configparser
import importlib.util
import json
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT/'nbs'
LEARN = ['index.ipynb', '05_tutorial.ipynb', '20_models.mat.ipynb', '21_models.jas.ipynb', '22_models.a3lign.ipynb',
         '41_train.bap.ipynb', '61_explore.tokens.ipynb', '62_explore.time.ipynb', '06_own_video.ipynb']
SECTIONS = ['Learn the method', 'Run it for real']


def _build_docs():
    spec = importlib.util.spec_from_file_location('build_docs', ROOT/'.ci'/'build_docs.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _listed() -> list[tuple[str, list[str]]]:
    "The sections of sidebar.yml as written (not through the build's reader): [(title, [entries])]."
    contents = yaml.safe_load((NBS/'sidebar.yml').read_text(encoding='utf-8'))['website']['sidebar']['contents']
    assert all(isinstance(c, dict) and 'section' in c for c in contents), f'entries outside the two sections: {contents}'
    return [(c['section'], list(c['contents'])) for c in contents]


def test_every_notebook_listed_once():
    names = [n for _, ns in _listed() for n in ns]
    have = {p.relative_to(NBS).as_posix() for p in NBS.rglob('*.ipynb')
            if not any(s.startswith(('_', '.')) for s in p.relative_to(NBS).parts)}
    assert not (twice := sorted({n for n in names if names.count(n) > 1})), f'listed more than once: {twice}'
    assert not (missing := sorted(have - set(names))), f'notebooks not in nbs/sidebar.yml (add them in reading order): {missing}'
    assert not (gone := sorted(set(names) - have)), f'listed in nbs/sidebar.yml but not in nbs/: {gone}'
    print(f'sidebar.yml: {len(names)} entries, {len(have)} notebooks in nbs/')


def test_learn_path_first():
    sections = _listed()
    assert [t for t, _ in sections] == SECTIONS, [t for t, _ in sections]
    assert sections[0][1] == LEARN, sections[0][1]
    names = [n for _, ns in sections for n in ns]
    assert names[:len(LEARN)] == LEARN and names[len(LEARN)] == '60_ablate.ipynb', names[:len(LEARN) + 1]


def test_build_reads_the_same_order():
    "The docs build's reader gives the file's order."
    assert _build_docs().read_sidebar(NBS) == _listed()


def test_quarto_uses_it():
    cfg = configparser.ConfigParser(); cfg.read(ROOT/'settings.ini')
    assert cfg['DEFAULT']['custom_sidebar'] == 'True', 'nbdev_docs would overwrite nbs/sidebar.yml (custom_sidebar = False)'
    q = yaml.safe_load((NBS/'_quarto.yml').read_text(encoding='utf-8'))
    assert 'sidebar.yml' in q['metadata-files'] and q['website'].get('page-navigation') is True, q


def _nb(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({'cells': [], 'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5}))


def test_an_unlisted_notebook_fails_the_build(tmp_path):
    bd = _build_docs()
    for n in ('index.ipynb', '10_a.ipynb', '20_b.ipynb'): _nb(tmp_path/n)
    _nb(tmp_path/'_scratch.ipynb')  # private: neither built nor listed
    sidebar = {'website': {'sidebar': {'contents': [{'section': 'Learn', 'contents': ['index.ipynb', '20_b.ipynb']},
                                                    {'section': 'Run', 'contents': ['10_a.ipynb']}]}}}
    (tmp_path/'sidebar.yml').write_text(yaml.safe_dump(sidebar))
    assert bd.read_sidebar(tmp_path) == [('Learn', ['index.ipynb', '20_b.ipynb']), ('Run', ['10_a.ipynb'])]
    _nb(tmp_path/'30_new_lesson.ipynb')
    with pytest.raises(SystemExit, match=r'not listed.*30_new_lesson\.ipynb'): bd.read_sidebar(tmp_path)
    (tmp_path/'30_new_lesson.ipynb').unlink()
    sidebar['website']['sidebar']['contents'][1]['contents'] += ['10_a.ipynb', '40_gone.ipynb']
    (tmp_path/'sidebar.yml').write_text(yaml.safe_dump(sidebar))
    with pytest.raises(SystemExit, match=r'(?s)more than once: 10_a\.ipynb.*not there: 40_gone\.ipynb'): bd.read_sidebar(tmp_path)
