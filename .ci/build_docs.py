#!/usr/bin/env python
"""Build the docs site from the notebooks, with their outputs.

The notebooks are committed without outputs (small repository, clean diffs), so the build runs them
first, as `nbdev_test` does: each notebook in a fresh IPython shell (execnb) inside a few worker
processes that outlive it (`.ci/docs_run.py`; torch is imported once per worker, not once per
notebook), in `nbs/` as the working directory, cells marked with a test flag (`#| slow`, `#| cuda`,
...) or `#| eval: false` skipped as `nbdev_test` skips them, several notebooks at once (`--jobs`),
longest first (by the last build's times), each within a time limit (`--timeout`). A notebook that
fails or runs out of time is named with its error and the build fails; nothing is skipped silently.

With quarto on PATH the run notebooks go to `nbdev_docs` (the nbdev/quarto site in `_docs/`). Without
quarto it says so and builds a plain fallback site instead: nbdev's own notebook processing (`_proc/`,
the same step `nbdev_docs` runs before quarto), then one HTML page per notebook with nbconvert, a
sidebar of all pages, and `index.html` from `nbs/index.ipynb` (the notebook map); `nbs/images/` is copied
into the site (markdown images such as `![...](images/architecture.svg)`).

The reading order is `nbs/sidebar.yml` (quarto's sidebar format; `custom_sidebar = True` in settings.ini, so
`nbdev_docs` keeps it): its sections ("Learn the method", then "Run it for real"), in order. Quarto shows it
with previous/next links (`page-navigation` in `nbs/_quarto.yml`); the fallback site reads the same file for
its left nav (the sections with their headings) and for the previous/next links at the top and bottom of
every page, across both sections. A notebook that sidebar.yml does not list fails the build (a new lesson
cannot be forgotten), as does a listed notebook that is not there.

Plotly figures render offline: the pages never fetch anything from a CDN. Figures are stored as
plotly JSON while the notebooks run and written into the pages as `Plotly.newPlot` calls against one
`plotly.min.js` copied into the site once (from the installed plotly); require.js and MathJax, which
nbconvert would load from a CDN, are left out. Interactive widgets (the explorers) need a live kernel,
so a page shows a note in their place; each explorer lesson also draws its figures as plain plotly.

Why a fallback: quarto is a binary. PyPI's `quarto-cli` is an sdist whose build downloads that binary
from GitHub, so it cannot install where only package registries are reachable; Debian has no quarto
package. Install quarto (https://quarto.org/docs/get-started/, or `pip install quarto-cli` where
GitHub is reachable) and rerun for the full site with search and the quarto theme.

    python .ci/build_docs.py                   # -> _docs/index.html, every notebook run
    python .ci/build_docs.py --out DIR         # -> DIR/index.html
    python .ci/build_docs.py --jobs 4          # run 4 notebooks at a time (default: the CPU count, at most 4)
    python .ci/build_docs.py --run '23_*'      # run only the notebooks matching a glob (repeatable); others show no outputs
    python .ci/build_docs.py --no-run          # no outputs at all (seconds; for checking links and layout)
    python .ci/build_docs.py --fallback        # the plain site even if quarto is installed
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import fnmatch
import html
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # docs_run: the worker processes import it by name
from docs_run import _directives, _src, run_notebook, worker_init  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RUN_DIR = ROOT/'_docs_run'  # the run notebooks (git-ignored); `nbs/` itself is never written to
NAV_CSS = """<style>
#a3-nav{position:fixed;top:0;left:0;bottom:0;width:240px;overflow-y:auto;padding:12px;
 background:#f6f7f9;border-right:1px solid #ddd;font:14px/1.4 system-ui,sans-serif;z-index:10}
#a3-nav a{display:block;padding:3px 0;color:#1a5fb4;text-decoration:none}
#a3-nav a.current{font-weight:bold}
#a3-nav .a3-title{font-weight:bold;font-size:16px;margin-bottom:8px}
#a3-nav .a3-section{font-weight:bold;color:#333;margin:12px 0 2px;text-transform:uppercase;font-size:12px;letter-spacing:.04em}
#a3-nav .a3-section + a, #a3-nav .a3-section ~ a{padding-left:6px}
body{margin-left:260px !important}
.a3-pager{display:flex;justify-content:space-between;gap:16px;font:14px system-ui,sans-serif;margin:16px 24px;
 padding:8px 0;border-top:1px solid #ddd}
.a3-pager.a3-top{border-top:0;border-bottom:1px solid #ddd}
.a3-pager a{color:#1a5fb4;text-decoration:none}
.a3-pager .a3-next{margin-left:auto;text-align:right}
.a3-note{font:12px system-ui,sans-serif;color:#777;margin-top:12px}
.a3-widget-note{font:13px system-ui,sans-serif;color:#555;border:1px dashed #bbb;padding:8px 12px;margin:4px 0}
</style>"""
SIDEBAR = 'sidebar.yml'  # the reading order, in the notebook folder
PLOTLY_JS = 'plotly.min.js'
PLOTLY_MIME = 'application/vnd.plotly.v1+json'
WIDGET_MIME = 'application/vnd.jupyter.widget-view+json'
WIDGET_NOTE = ('<div class="a3-widget-note">An interactive widget is shown here when the notebook runs in Jupyter '
               '(it needs a live kernel, so a static page cannot show it). Open the notebook in JupyterLab to use it.</div>')
# nbconvert's lab template, less the two scripts it would fetch from a CDN (require.js, MathJax)
OFFLINE_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
"""


def _run(cmd: list[str]) -> None:
    print('$', ' '.join(cmd), flush=True)
    subprocess.run(cmd, cwd=ROOT, check=True)


def _timings(dest: Path) -> dict[str, float]:
    "Seconds each notebook took in the last build (longest first next time, so the last to finish is a short one)."
    try: return {k: float(v) for k, v in json.loads((dest/'_timings.json').read_text()).items()}
    except (OSError, ValueError, AttributeError): return {}


def run_notebooks(nbs: Path, dest: Path, patterns: list[str] | None, jobs: int, timeout: float) -> Path:
    """Copy `nbs` to `dest` and run the notebooks matching one of `patterns` (all if None) in place there.

    `jobs` worker processes run them, each notebook in a fresh IPython shell, longest first (by the last build's
    times). Raises SystemExit naming every notebook that failed, with the end of its error."""
    import multiprocessing as mp
    from concurrent.futures.process import BrokenProcessPool
    from nbdev.config import get_config
    flags = set(get_config().get('tst_flags', '').split())
    last = _timings(dest)
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(nbs, dest, ignore=shutil.ignore_patterns('.ipynb_checkpoints', '_*.ipynb', 'runs', '_tmp*'))
    todo = sorted(p for p in nbs.rglob('*.ipynb') if not any(s.startswith(('_', '.')) for s in p.relative_to(nbs).parts)
                  and p.stem != 'index' and (not patterns or any(fnmatch.fnmatch(p.name, g) for g in patterns)))
    todo.sort(key=lambda p: -last.get(p.name, 0.0))
    env_before = {k: os.environ.get(k) for k in ('PLOTLY_RENDERER', 'PYTHONPATH', 'OMP_NUM_THREADS')}
    # every worker: plotly figures as JSON (turned into offline figures below), one torch thread (jobs share the cores)
    os.environ['PLOTLY_RENDERER'] = 'plotly_mimetype'
    os.environ['PYTHONPATH'] = os.pathsep.join([str(ROOT)] + [p for p in [env_before['PYTHONPATH']] if p])
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    print(f'running {len(todo)} notebooks in {max(1, min(jobs, len(todo)))} worker process(es), {timeout:.0f} s each at most '
          f'(skipping cells flagged {" ".join(sorted(flags))})', flush=True)
    t0, failed, took = time.perf_counter(), [], {}
    start_method = mp.get_start_method()  # the platform's default, as in a kernel (fork on Linux)
    log_of = lambda p: dest/'_logs'/f'{p.stem}.log'  # what native code printed while `p` ran

    def run_all(notebooks, workers):
        "Run `notebooks` in a pool of `workers`; returns those whose worker died (a crash) before they finished."
        lost = []
        with cf.ProcessPoolExecutor(max_workers=max(1, min(workers, len(notebooks))), mp_context=mp.get_context('spawn'),
                                    initializer=worker_init, initargs=(str(ROOT), start_method)) as ex:
            futs = {ex.submit(run_notebook, p, dest/p.relative_to(nbs), flags, timeout, log_of(p)): p for p in notebooks}
            for f in cf.as_completed(futs):
                p = futs[f]
                try: ok, dt, err = f.result()
                except BrokenProcessPool: lost.append(p); continue
                except Exception as e: ok, dt, err = False, 0.0, f'{type(e).__name__}: {e}'
                took[p.name] = dt
                print(f'  {"ok  " if ok else "FAIL"} {dt:6.1f} s  {p.name}', flush=True)
                if not ok: failed.append((p.name, err))
        return lost

    try:
        lost = run_all(todo, jobs)
        for p in lost:  # a worker died under them: each alone in a fresh process, so the one that kills it is named
            if run_all([p], 1):
                failed.append((p.name, f'the process running it died (a crash in native code, or stuck past '
                                       f'{timeout:.0f} s + 60 s where no signal reaches; see {log_of(p)})'))
                print(f'  FAIL          {p.name} (its process died)', flush=True)
    finally:
        for k, v in env_before.items():
            if v is None: os.environ.pop(k, None)
            else: os.environ[k] = v
    (dest/'_timings.json').write_text(json.dumps({**last, **took}, indent=1, sort_keys=True))
    print(f'ran {len(todo)} notebooks in {time.perf_counter() - t0:.1f} s', flush=True)
    if failed:
        msg = '\n\n'.join(f'--- {name}\n{err[-3000:]}' for name, err in sorted(failed))
        raise SystemExit(f'{len(failed)} notebook(s) failed while building the docs: '
                         f'{", ".join(n for n, _ in sorted(failed))}\n\n{msg}')
    return dest


def _frontmatter(nb: dict) -> dict:
    "The YAML front matter nbdev's processing puts in a raw cell (title, description, output-file)."
    import yaml
    for c in nb['cells']:
        src = _src(c)
        if c['cell_type'] == 'raw' and src.lstrip().startswith('---'):
            try: return yaml.safe_load(src.strip().strip('-')) or {}
            except yaml.YAMLError: return {}
    return {}


def _page_name(nb_path: Path, fm: dict) -> str:
    if nb_path.stem == 'index': return 'index.html'
    return fm.get('output-file') or re.sub(r'^\d+[a-z]?_', '', nb_path.stem) + '.html'


def read_sidebar(nbs: Path) -> list[tuple[str, list[str]]]:
    """The reading order in `nbs/sidebar.yml`: [(section title, [notebook paths relative to `nbs`])], in order.

    Raises SystemExit when a notebook in `nbs` is not listed, is listed twice, or a listed one is not there: a new
    lesson cannot be left out of the site's reading order."""
    import yaml
    f = nbs/SIDEBAR
    if not f.exists(): raise SystemExit(f'{f} missing: the docs site\'s reading order (quarto\'s sidebar format)')
    sections = []

    def walk(items, title):
        for it in items or []:
            if isinstance(it, dict) and 'contents' in it:
                walk(it['contents'], it.get('section') or it.get('text') or ''); continue
            name = it if isinstance(it, str) else it.get('href') if isinstance(it, dict) else None
            if not name: raise SystemExit(f'{f}: an entry this build does not understand: {it!r}')
            if not sections or sections[-1][0] != title: sections.append((title, []))
            sections[-1][1].append(name)
    try: walk(yaml.safe_load(f.read_text(encoding='utf-8'))['website']['sidebar']['contents'], '')
    except (KeyError, TypeError, yaml.YAMLError) as e:
        raise SystemExit(f'{f}: not a quarto sidebar (website: sidebar: contents: ...): {e}') from None
    listed = [n for _, ns in sections for n in ns]
    have = {p.relative_to(nbs).as_posix() for p in nbs.rglob('*.ipynb')
            if not any(s.startswith(('_', '.')) for s in p.relative_to(nbs).parts)}
    twice = sorted({n for n in listed if listed.count(n) > 1})
    missing = sorted(have - set(listed))
    gone = sorted(set(listed) - have)
    if missing or twice or gone:
        raise SystemExit(f'{f} does not match the notebooks in {nbs}:'
                         + (f'\n  not listed (add each to a section, in reading order): {", ".join(missing)}' if missing else '')
                         + (f'\n  listed more than once: {", ".join(twice)}' if twice else '')
                         + (f'\n  listed but not there: {", ".join(gone)}' if gone else ''))
    return sections


def _pager(prev: tuple[str, str] | None, nxt: tuple[str, str] | None, where: str) -> str:
    "Previous/next links in the reading order: (page, title) or None at either end."
    a = lambda t, rel, arrow: (f'<a class="a3-{rel}" rel="{rel}" href="{t[0]}">'
                               + (f'&larr; previous: {html.escape(t[1])}' if arrow == 'l' else f'next: {html.escape(t[1])} &rarr;') + '</a>')
    return (f'<nav class="a3-pager a3-{where}">' + (a(prev, 'prev', 'l') if prev else '<span></span>')
            + (a(nxt, 'next', 'r') if nxt else '') + '</nav>')


def _as_quarto_would(nb) -> None:
    """What quarto does with nbdev's cell options, for the plain site: `#| include: false` drops the cell,
    `#| echo: false` its code, `#| output: false` its outputs; the `#|` lines themselves are not shown; the
    quarto-only `{target=...}` attributes of show_doc's markdown are removed."""
    cells = []
    for c in nb.cells:
        if c.cell_type == 'code':
            d = _directives(c.source)
            if (d.get('include:') or [''])[0].lower() == 'false': continue
            lines = c.source.splitlines()
            while lines and re.match(r'\s*#\|', lines[0]): lines.pop(0)
            c.source = '\n'.join(lines)
            if (d.get('output:') or [''])[0].lower() == 'false': c.outputs = []
            if (d.get('echo:') or [''])[0].lower() == 'false' or not c.source.strip():
                c.metadata.setdefault('tags', []).append('a3-hide-input')
            if not c.source.strip() and not c.outputs: continue
            for o in c.outputs:
                md = o.get('data', {}).get('text/markdown')
                if md: o['data']['text/markdown'] = re.sub(r'\{target="_blank"[^{}\n]*\}', '', md)
        cells.append(c)
    nb.cells = cells


def _join_sources(fig: dict) -> dict:
    """An image's `source` (a `data:image/...` URL) back to one string, in place: execnb's `write_nb` (which nbdev's
    docs processing uses) splits every nested key named `source` into a list of lines, and plotly.js draws nothing
    for a list. Image traces and `layout.images`, in the figure and in its animation frames."""
    def fix(d):
        if isinstance(d, dict) and isinstance(d.get('source'), list) and all(isinstance(x, str) for x in d['source']):
            d['source'] = ''.join(d['source'])
    for part in [fig] + list(fig.get('frames') or []):
        if not isinstance(part, dict): continue
        for tr in part.get('data') or []: fix(tr)
        for im in (part.get('layout') or {}).get('images') or []: fix(im)
    return fig


def _offline_outputs(nb, load_js: bool = False) -> int:
    """Plotly JSON outputs -> HTML that draws them with the site's plotly.min.js; widget outputs -> a note.
    With `load_js` the first figure also loads plotly.min.js (for quarto, whose page head we do not write).
    Returns the number of figures."""
    import plotly.io as pio
    n = 0
    for c in nb.cells:
        for o in c.get('outputs', []):
            data = o.get('data') if o.get('output_type') in ('display_data', 'execute_result') else None
            if not data: continue
            if PLOTLY_MIME in data:
                fig = _join_sources(data[PLOTLY_MIME])
                div = pio.to_html(fig, include_plotlyjs=False, full_html=False, validate=False,
                                  div_id=f'a3-fig-{n}', config={'displaylogo': False})
                if load_js and n == 0: div = f'<script src="{PLOTLY_JS}" charset="utf-8"></script>' + div
                o['data'] = {'text/html': div}
                n += 1
            elif WIDGET_MIME in data:
                o['data'] = {'text/html': WIDGET_NOTE}
    return n


def _share_css(body: str, shared: dict[str, str]) -> str:
    "nbconvert inlines its theme (~250 KB) in every page: keep each large style block once, as a file of the site."
    def sub(m):
        css = m.group(1)
        if len(css) < 10_000: return m.group(0)
        return f'<link rel="stylesheet" href="{shared.setdefault(css, f"lab-{len(shared)}.css")}">'
    return re.sub(r'<style type="text/css">(.*?)</style>', sub, body, flags=re.S)


def local_links(body: str, hosted: str, pages: set[str]) -> str:
    """Links nbdev points at the hosted site (`doc_host` + `doc_baseurl`), made to work on this one.

    An HTML link becomes a link to the page here (when it is built; else its text); a markdown link that nbdev wrote
    inside code (a signature's parameter comment, shown as text) becomes its text: the name, without the URL."""
    h = re.escape(hosted.rstrip('/') + '/')
    body = re.sub(r'\[(`?[^\]\[`]+`?)\]\(' + h + r'[^)\s]*\)', lambda m: m.group(1), body)
    def anchor(m):
        target = m.group(2)
        return (f'<a{m.group(1)}href="{target}"{m.group(3)}>' if target.split('#')[0] in pages
                else f'<a{m.group(1)}{m.group(3)}>')
    return re.sub(r'<a([^>]*?)href="' + h + r'([^"]*)"([^>]*)>', anchor, body)


def build_fallback(out: Path, path: Path | None = None) -> Path:
    "Plain HTML site (no quarto): nbdev processing, then nbconvert, with a sidebar of all pages."
    import jinja2
    from nbconvert import HTMLExporter
    import nbformat
    import plotly.offline
    from nbdev.config import get_config
    from nbdev.quarto import refresh_quarto_yml
    from nbdev.serve import proc_nbs
    import nbdev.doclinks

    os.chdir(ROOT)
    cfg = get_config()
    refresh_quarto_yml()
    nbdev.doclinks._build_modidx()
    path = Path(path or cfg.nbs_path).resolve()
    try: cache = proc_nbs(path, n_workers=0, force=True)
    except Exception as e:
        raise SystemExit(f'{e}\n\nnbdev could not process a notebook for the docs (nbdev_docs fails the same way). '
                         'nbdev runs every cell that contains an import while it renders docs, without the cells before it; '
                         'a cell that mixes imports with code using earlier variables then fails. Fix: put imports in a '
                         'cell of their own (see the UserWarning "Found cells containing imports and other code" above).') from None
    wanted = {p.relative_to(path).with_suffix('') for p in path.rglob('*.ipynb')}
    nbs = sorted(p for p in cache.rglob('*.ipynb') if p.relative_to(cache).with_suffix('') in wanted
                 and not any(s.startswith(('_', '.')) for s in p.relative_to(cache).parts))
    if not nbs: raise SystemExit(f'no notebooks found under {cache}')
    order = read_sidebar(path)  # the reading order; fails if a notebook is not in it
    pages = {}
    for p in nbs:
        nb = json.loads(p.read_text(encoding='utf-8'))
        fm = _frontmatter(nb)
        pages[p.relative_to(cache).with_suffix('.ipynb').as_posix()] = (p, _page_name(p, fm), fm.get('title') or p.stem,
                                                                        fm.get('description', ''))
    # in the reading order of sidebar.yml, each with its section's title
    if lost := [n for _, ns in order for n in ns if n not in pages]:
        raise SystemExit(f'nbdev\'s processing left out {", ".join(lost)} (not in {cache})')
    sections = [(title, [pages[n] for n in names]) for title, names in order]
    pages = [t for _, ts in sections for t in ts]
    name_of = {p.name: page for p, page, _, _ in pages}
    out.mkdir(parents=True, exist_ok=True)
    from nbconvert.preprocessors import TagRemovePreprocessor
    exporter = HTMLExporter(template_file='a3_offline.html.j2', exclude_input_prompt=True, exclude_output_prompt=True,
                            extra_loaders=[jinja2.DictLoader({'a3_offline.html.j2': OFFLINE_TEMPLATE})])
    exporter.register_preprocessor(TagRemovePreprocessor(remove_input_tags={'a3-hide-input'}), enabled=True)
    n_figs, shared_css = 0, {}
    def nav_of(page):  # the sections of sidebar.yml, each with its heading, the page shown marked current
        items = []
        for sec, ts in sections:
            if sec: items.append(f'<div class="a3-section">{html.escape(sec)}</div>')
            items += [f'<a href="{pg}"{" class=current" if pg == page else ""}>{html.escape(t)}</a>' for _, pg, t, _ in ts]
        return ''.join(items)

    for i, (p, page, title, desc) in enumerate(pages):
        nb = nbformat.read(p, as_version=4)
        nb.cells = [c for c in nb.cells if c.cell_type != 'raw']
        nb.metadata.pop('widgets', None)
        head = f'# {title}\n' + (f'\n> {desc}\n' if desc else '')
        nb.cells.insert(0, nbformat.v4.new_markdown_cell(head))
        _as_quarto_would(nb)
        figs = _offline_outputs(nb)
        n_figs += figs
        body, _ = exporter.from_notebook_node(nb, resources={'metadata': {'name': title}})
        # links between notebooks point at their pages
        body = re.sub(r'href="(?:\./)?([\w.\-]+)\.ipynb(#[^"]*)?"',
                      lambda m: f'href="{name_of.get(m.group(1) + ".ipynb", m.group(1) + ".html")}{m.group(2) or ""}"', body)
        body = local_links(body, f"{cfg.doc_host}{cfg.doc_baseurl}", set(name_of.values()))
        nav = (f'<nav id="a3-nav"><div class="a3-title">{html.escape(cfg.title)}</div>{nav_of(page)}'
               '<div class="a3-note">plain build (quarto not installed): see .ci/build_docs.py</div></nav>')
        prev = pages[i - 1][1:3] if i > 0 else None
        nxt = pages[i + 1][1:3] if i + 1 < len(pages) else None
        js = f'<script src="{PLOTLY_JS}" charset="utf-8"></script>' if figs else ''
        body = _share_css(body, shared_css)
        body = body.replace('</head>', NAV_CSS + js + '</head>', 1)
        body = re.sub(r'(<body[^>]*>)', lambda m: m.group(1) + nav + _pager(prev, nxt, 'top'), body, count=1)
        body = body.replace('</body>', _pager(prev, nxt, 'bottom') + '</body>', 1)
        (out/page).write_text(body, encoding='utf-8')
    for css, name in shared_css.items(): (out/name).write_text(css, encoding='utf-8')
    # plotly.js once for the whole site, from the installed plotly (the version that wrote the figures)
    if n_figs: (out/PLOTLY_JS).write_text(plotly.offline.get_plotlyjs(), encoding='utf-8')
    # the images the lessons' markdown shows (`![...](images/x.svg)`), at the same relative path
    if (path/'images').is_dir():
        shutil.rmtree(out/'images', ignore_errors=True)
        shutil.copytree(path/'images', out/'images', ignore=shutil.ignore_patterns('.*'))
    print(f'wrote {len(pages)} pages with {n_figs} plotly figures' + (f' and {PLOTLY_JS}' if n_figs else '') + f' to {out}',
          flush=True)
    return out/'index.html'


def _size(p: Path) -> str:
    n = sum(f.stat().st_size for f in p.rglob('*') if f.is_file())
    return f'{n / 2**20:.1f} MiB'


def main(argv=None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--out', type=Path, default=None, help='output folder (default: doc_path of settings.ini, _docs)')
    ap.add_argument('--path', type=Path, default=None, help='notebook folder (default: nbs_path of settings.ini)')
    ap.add_argument('--fallback', action='store_true', help='build the plain site even if quarto is installed')
    ap.add_argument('--run', action='append', metavar='GLOB',
                    help='run only the notebooks whose file name matches (repeatable; default: all)')
    ap.add_argument('--no-run', action='store_true', help='do not run the notebooks: pages without outputs')
    ap.add_argument('--jobs', type=int, default=min(4, os.cpu_count() or 1), help='notebooks run at the same time')
    ap.add_argument('--timeout', type=float, default=600, help='seconds one notebook may run')
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    docs = ROOT/'_docs'
    out = (a.out or docs).resolve()
    from nbdev.config import get_config
    src = Path(a.path or get_config().nbs_path).resolve()
    read_sidebar(src)  # the reading order: a notebook it leaves out fails the build here, before any run
    path = src if a.no_run else run_notebooks(src, RUN_DIR, a.run, a.jobs, a.timeout)
    if shutil.which('quarto') and not a.fallback:
        import nbformat, plotly.offline
        for p in (path.rglob('*.ipynb') if path != src else []):  # the run copies (never nbs/ itself): figures and
            nb = nbformat.read(p, as_version=4)  # widgets as on the plain site, plotly.min.js from the site itself
            if _offline_outputs(nb, load_js=True): nbformat.write(nb, p)
        _run([str(Path(sys.executable).with_name('nbdev_docs')), '--path', str(path)])
        (docs/PLOTLY_JS).write_text(plotly.offline.get_plotlyjs(), encoding='utf-8')
        if out != docs.resolve():
            shutil.rmtree(out, ignore_errors=True); shutil.copytree(docs, out)
        index = out/'index.html'
    else:
        if not a.fallback:
            print('NOTE: quarto is not on PATH, so `nbdev_docs` cannot build the quarto site here. PyPI\'s '
                  'quarto-cli downloads the quarto binary from GitHub while it installs, and Debian has no quarto '
                  'package. Building the plain fallback site instead (same notebooks and notebook map; no search, '
                  'no quarto theme). Install quarto from quarto.org and rerun for the full site.', file=sys.stderr, flush=True)
        index = build_fallback(out, path)
    print(f'docs built in {time.perf_counter() - t0:.1f} s: {index} ({_size(out)})', flush=True)
    return index


if __name__ == '__main__':
    main()
