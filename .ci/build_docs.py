#!/usr/bin/env python
"""Build the docs site from the notebooks.

With quarto on PATH this is exactly `nbdev_docs` (the nbdev/quarto site in `_docs/`).
Without quarto it says so and builds a plain fallback site instead: nbdev's own notebook processing
(`_proc/`, the same step `nbdev_docs` runs before quarto), then one HTML page per notebook with
nbconvert, a sidebar of all pages, and `index.html` from `nbs/index.ipynb` (the notebook map).

Why a fallback: quarto is a binary. PyPI's `quarto-cli` is an sdist whose build downloads that binary
from GitHub, so it cannot install where only package registries are reachable; Debian has no quarto
package. Install quarto (https://quarto.org/docs/get-started/, or `pip install quarto-cli` where
GitHub is reachable) and rerun for the full site with search and the quarto theme.

    python .ci/build_docs.py            # -> _docs/index.html
    python .ci/build_docs.py --out DIR  # -> DIR/index.html
    python .ci/build_docs.py --fallback # the plain site even if quarto is installed
"""
from __future__ import annotations

import argparse
import html
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NAV_CSS = """<style>
#a3-nav{position:fixed;top:0;left:0;bottom:0;width:240px;overflow-y:auto;padding:12px;
 background:#f6f7f9;border-right:1px solid #ddd;font:14px/1.4 system-ui,sans-serif;z-index:10}
#a3-nav a{display:block;padding:3px 0;color:#1a5fb4;text-decoration:none}
#a3-nav a.current{font-weight:bold}
#a3-nav .a3-title{font-weight:bold;font-size:16px;margin-bottom:8px}
body{margin-left:260px !important}
.a3-note{font:12px system-ui,sans-serif;color:#777;margin-top:12px}
</style>"""


def _run(cmd: list[str]) -> None:
    print('$', ' '.join(cmd), flush=True)
    subprocess.run(cmd, cwd=ROOT, check=True)


def _frontmatter(nb: dict) -> dict:
    "The YAML front matter nbdev's processing puts in a raw cell (title, description, output-file)."
    for c in nb['cells']:
        src = ''.join(c['source']) if isinstance(c['source'], list) else c['source']
        if c['cell_type'] == 'raw' and src.lstrip().startswith('---'):
            out = {}
            for line in src.strip().strip('-').splitlines():
                if ':' in line:
                    k, v = line.split(':', 1)
                    out[k.strip()] = v.strip().strip('"\'')
            return out
    return {}


def _page_name(nb_path: Path, fm: dict) -> str:
    if nb_path.stem == 'index': return 'index.html'
    return fm.get('output-file') or re.sub(r'^\d+[a-z]?_', '', nb_path.stem) + '.html'


def build_fallback(out: Path, path: Path | None = None) -> Path:
    "Plain HTML site (no quarto): nbdev processing, then nbconvert, with a sidebar of all pages."
    from nbconvert import HTMLExporter
    import nbformat
    from nbdev.config import get_config
    from nbdev.quarto import refresh_quarto_yml
    from nbdev.serve import proc_nbs
    import nbdev.doclinks

    os.chdir(ROOT)
    cfg = get_config()
    refresh_quarto_yml()
    nbdev.doclinks._build_modidx()
    path = Path(path or cfg.nbs_path).resolve()
    try: cache = proc_nbs(path, n_workers=0)
    except Exception as e:
        raise SystemExit(f'{e}\n\nnbdev could not process a notebook for the docs (nbdev_docs fails the same way). '
                         'nbdev runs every cell that contains an import while it renders docs, without the cells before it; '
                         'a cell that mixes imports with code using earlier variables then fails. Fix: put imports in a '
                         'cell of their own (see the UserWarning "Found cells containing imports and other code" above).') from None
    wanted = {p.relative_to(path).with_suffix('') for p in path.rglob('*.ipynb')}
    nbs = sorted(p for p in cache.rglob('*.ipynb') if p.relative_to(cache).with_suffix('') in wanted
                 and not any(s.startswith(('_', '.')) for s in p.relative_to(cache).parts))
    if not nbs: raise SystemExit(f'no notebooks found under {cache}')
    pages = []
    for p in nbs:
        nb = json.loads(p.read_text(encoding='utf-8'))
        fm = _frontmatter(nb)
        pages.append((p, _page_name(p, fm), fm.get('title') or p.stem, fm.get('description', '')))
    # the index first, then notebook order
    pages.sort(key=lambda t: (t[1] != 'index.html', str(t[0])))
    name_of = {p.name: page for p, page, _, _ in pages}
    out.mkdir(parents=True, exist_ok=True)
    exporter = HTMLExporter(template_name='lab', exclude_input_prompt=True, exclude_output_prompt=True)
    for p, page, title, desc in pages:
        nb = nbformat.read(p, as_version=4)
        nb.cells = [c for c in nb.cells if c.cell_type != 'raw']
        head = f'# {title}\n' + (f'\n> {desc}\n' if desc else '')
        nb.cells.insert(0, nbformat.v4.new_markdown_cell(head))
        body, _ = exporter.from_notebook_node(nb, resources={'metadata': {'name': title}})
        # links between notebooks point at their pages
        body = re.sub(r'href="(?:\./)?([\w.\-]+)\.ipynb(#[^"]*)?"',
                      lambda m: f'href="{name_of.get(m.group(1) + ".ipynb", m.group(1) + ".html")}{m.group(2) or ""}"', body)
        nav = ''.join(f'<a href="{pg}"{" class=current" if pg == page else ""}>{html.escape(t)}</a>' for _, pg, t, _ in pages)
        nav = (f'<nav id="a3-nav"><div class="a3-title">{html.escape(cfg.title)}</div>{nav}'
               '<div class="a3-note">plain build (quarto not installed): see tools/build_docs.py</div></nav>')
        body = body.replace('</head>', NAV_CSS + '</head>', 1)
        body = re.sub(r'(<body[^>]*>)', lambda m: m.group(1) + nav, body, count=1)
        (out/page).write_text(body, encoding='utf-8')
    print(f'wrote {len(pages)} pages to {out}', flush=True)
    return out/'index.html'


def main(argv=None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--out', type=Path, default=None, help='output folder (default: doc_path of settings.ini, _docs)')
    ap.add_argument('--path', type=Path, default=None, help='notebook folder (default: nbs_path of settings.ini)')
    ap.add_argument('--fallback', action='store_true', help='build the plain site even if quarto is installed')
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    docs = ROOT/'_docs'
    out = (a.out or docs).resolve()
    if shutil.which('quarto') and not a.fallback:
        _run([str(Path(sys.executable).with_name('nbdev_docs'))] + (['--path', str(a.path)] if a.path else []))
        if out != docs.resolve():
            shutil.rmtree(out, ignore_errors=True); shutil.copytree(docs, out)
        index = out/'index.html'
    else:
        if not a.fallback:
            print('NOTE: quarto is not on PATH, so `nbdev_docs` cannot build the quarto site here. PyPI\'s '
                  'quarto-cli downloads the quarto binary from GitHub while it installs, and Debian has no quarto '
                  'package. Building the plain fallback site instead (same notebooks and notebook map; no search, '
                  'no quarto theme). Install quarto from quarto.org and rerun for the full site.', file=sys.stderr, flush=True)
        index = build_fallback(out, a.path)
    print(f'docs built in {time.perf_counter() - t0:.1f} s: {index}', flush=True)
    return index


if __name__ == '__main__':
    main()
