"""The explorers and the docs site in a real browser.

Starts JupyterLab on loopback (free port, token, temp root; always stopped), drives Debian's headless
Chromium with Playwright, runs a small notebook that opens both explorers on the shipped samples,
and checks that they render, raise nothing (kernel or browser console), and that moving the frame
slider moves the marker. Then builds the docs site (running the BAP and video lessons and those with image
figures: 12, 13, 06, 71) and checks that its index shows the notebook map, that the BAP lesson's plotly figures
render with the network off (plotly.js from the site itself, no requests, no console errors), that the video
lesson's outputs hold no decord log lines, that every image figure on every page shows pixels (not a blank plot
area), that every `<img>` loads (the index's `images/architecture.svg`), and that the pages follow the reading order
of `nbs/sidebar.yml` (two sections in the nav; previous/next links that lead to the next page).
Screenshots go to `test-output/browser/` (printed). Needs: apt `chromium`, pip `playwright`.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path(os.environ.get('A3LIGN_CHROMIUM', '/usr/bin/chromium'))
OUT = ROOT/'test-output'/'browser'
CHROME_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
               '--disable-dev-shm-usage']

pytestmark = [
    pytest.mark.slow,  # a docs build, JupyterLab and Chromium: a CI step of their own (`pytest tests --slow -m slow`)
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f'{CHROMIUM} missing: `apt-get install -y chromium` '
                       '(or set A3LIGN_CHROMIUM to a Chromium binary) to run the browser check'),
]
playwright_sync = pytest.importorskip('playwright.sync_api', reason='pip install playwright (its browser download is not needed)')

# Console messages JupyterLab itself prints on a machine without network; none comes from our code.
BENIGN_CONSOLE = [
    re.compile(r'Failed to load resource.*(favicon|/lab/api/news|/api/translations|/lab/api/plugins)', re.I),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 2.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r: return r.status
    except Exception: return 0


@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    "A JupyterLab server on 127.0.0.1 with a token and a temp root folder; stopped at teardown."
    base = tmp_path_factory.mktemp('lab')
    root, conf, settings = base/'root', base/'config', base/'settings'
    for d in (root, conf, settings, base/'runtime', base/'workspaces'): d.mkdir()
    # render every cell (no virtualised "windowing"), so all outputs exist in the DOM
    (settings/'@jupyterlab'/'notebook-extension').mkdir(parents=True)
    (settings/'@jupyterlab'/'notebook-extension'/'tracker.jupyterlab-settings').write_text(json.dumps({'windowingMode': 'none'}))
    # no news/update pop-ups (they would also try the network)
    (settings/'@jupyterlab'/'apputils-extension').mkdir(parents=True)
    (settings/'@jupyterlab'/'apputils-extension'/'notification.jupyterlab-settings').write_text(
        json.dumps({'fetchNews': 'false', 'checkForUpdates': False}))
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(conf), JUPYTER_RUNTIME_DIR=str(base/'runtime'),
               PYTHONPATH=os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get('PYTHONPATH')] if p]),
               OMP_NUM_THREADS='1', MPLBACKEND='Agg')
    cmd = [sys.executable, '-m', 'jupyterlab', '--no-browser', '--allow-root',
           '--ServerApp.ip=127.0.0.1', f'--ServerApp.port={port}', '--ServerApp.port_retries=0',
           f'--IdentityProvider.token={token}', f'--ServerApp.root_dir={root}',
           '--LabApp.expose_app_in_browser=True', f'--LabApp.user_settings_dir={settings}',
           f'--LabApp.workspaces_dir={base/"workspaces"}', '--LabApp.news_url=',
           '--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate']
    log = open(base/'jupyterlab.log', 'w')
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f'http://127.0.0.1:{port}'
    try:
        t0 = time.time()
        while _get(f'{url}/api/status?token={token}') != 200:
            if proc.poll() is not None:
                raise RuntimeError(f'JupyterLab exited ({proc.returncode}); its log:\n{(base/"jupyterlab.log").read_text()[-3000:]}')
            if time.time() - t0 > 90:
                raise RuntimeError(f'JupyterLab did not answer on {url} in 90 s; log: {base/"jupyterlab.log"}')
            time.sleep(0.3)
        print(f'JupyterLab up on {url} in {time.time() - t0:.1f} s')
        yield dict(url=url, token=token, root=root, log=base/'jupyterlab.log')
    finally:
        # stop the server and the kernels it started (its own process group)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try: proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL); proc.wait(5)
        with_kids = subprocess.run(['pgrep', '-g', str(proc.pid)], capture_output=True, text=True).stdout.split()
        for pid in with_kids:
            try: os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError: pass
        log.close()


@pytest.fixture(scope='module')
def browser():
    "Debian's headless Chromium driven by Playwright; closed at teardown."
    with playwright_sync.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROME_ARGS, headless=True)
        try: yield b
        finally: b.close()


def _cell(src, kind='code'):
    c = {'cell_type': kind, 'metadata': {}, 'source': src}
    if kind == 'code': c.update(outputs=[], execution_count=None)
    return c


def explorer_notebook(path: Path) -> Path:
    "A small notebook that opens both explorers on the shipped samples and checkpoint."
    cells = [
        _cell('# Explorer check\nBoth explorers on the shipped samples and checkpoint.', 'markdown'),
        _cell(BROWSER_NB_SETUP),
        _cell('## Token embeddings', 'markdown'),
        _cell(BROWSER_NB_TOKENS),
        _cell('## Temporal alignment', 'markdown'),
        _cell(BROWSER_NB_TIME),
    ]
    nb = {'cells': cells, 'metadata': {'kernelspec': {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'}},
          'nbformat': 4, 'nbformat_minor': 5}
    path.write_text(json.dumps(nb))
    return path


BROWSER_NB_SETUP = """\
import torch; torch.set_num_threads(1)
from a3lign_nb.explore.tokens import TokenExplorer
from a3lign_nb.explore.time import TimeExplorer
"""
BROWSER_NB_TOKENS = """\
tok = TokenExplorer.from_samples(method='pca')
tok.widget()
"""
BROWSER_NB_TIME = """\
tim = TimeExplorer.from_samples()
tim.widget()
"""

JS_RUN_ALL = """async () => {
  const app = window.jupyterapp;
  const nb = app.shell.currentWidget;
  await nb.context.ready; await nb.sessionContext.ready;
  await app.commands.execute('notebook:run-all-cells');
  return true;
}"""
JS_STATE = """() => {
  const nb = window.jupyterapp.shell.currentWidget;
  const cells = nb.content.model.cells, errors = [], stderr = [];
  let pending = 0;
  for (let i = 0; i < cells.length; i++) {
    const c = cells.get(i);
    if (c.type !== 'code') continue;
    if (c.executionCount === null || nb.content.widgets[i].promptNode.textContent.includes('*')) pending++;
    for (let j = 0; j < c.outputs.length; j++) {
      const o = c.outputs.get(j).toJSON();
      if (o.output_type === 'error') errors.push(o.ename + ': ' + o.evalue);
      if (o.output_type === 'stream' && o.name === 'stderr') stderr.push(String(o.text));
    }
  }
  return {pending, errors, stderr, kernel: nb.sessionContext.session?.kernel?.status};
}"""


def _wait_state(page, timeout=180):
    t0, st = time.time(), None
    while time.time() - t0 < timeout:
        st = page.evaluate(JS_STATE)
        if st['errors'] or (st['pending'] == 0 and st['kernel'] == 'idle'): return st
        time.sleep(0.5)
    raise AssertionError(f'notebook did not finish in {timeout} s: {st}')


def _press_and_wait(page, handle_sel, keys, box_sel, js_expr, timeout=20_000) -> list[float]:
    "Press each key on a slider handle; wait until `js_expr` of the plot in `box_sel` changes; return the ms each took."
    handle = page.locator(handle_sel).first
    handle.focus()
    get = f'() => JSON.stringify((el => {js_expr})(document.querySelector("{box_sel} .js-plotly-plot")))'
    out = []
    for k in keys:
        before = page.evaluate(get)
        t0 = time.perf_counter()
        handle.press(k)
        page.wait_for_function(f'(b) => ({get})() !== b', arg=before, timeout=timeout)
        out.append(1000 * (time.perf_counter() - t0))
    return out


def test_explorers_render_in_jupyterlab(lab, browser):
    OUT.mkdir(parents=True, exist_ok=True)
    explorer_notebook(lab['root']/'explore_check.ipynb')
    page = browser.new_page(viewport={'width': 1500, 'height': 2600})
    console = []
    page.on('console', lambda m: console.append(f'{m.type}: {m.text}') if m.type == 'error' else None)
    page.on('pageerror', lambda e: console.append(f'pageerror: {e}'))
    try:
        t0 = time.time()
        page.goto(f"{lab['url']}/lab/tree/explore_check.ipynb?token={lab['token']}", wait_until='domcontentloaded')
        page.wait_for_function('() => window.jupyterapp && window.jupyterapp.shell.currentWidget '
                               '&& window.jupyterapp.shell.currentWidget.sessionContext', timeout=90_000)
        page.evaluate(JS_RUN_ALL)
        st = _wait_state(page)
        assert not st['errors'], f"error output in the notebook: {st['errors']}"
        page.wait_for_selector('.a3-token-explorer .js-plotly-plot', timeout=60_000)
        page.wait_for_selector('.a3-time-explorer .js-plotly-plot', timeout=60_000)
        print(f'notebook ran and both explorers rendered in {time.time() - t0:.1f} s')
        body = page.inner_text('body')
        for bad in ('Error displaying widget', 'Error rendering', 'Traceback'):
            assert bad not in body, f'{bad!r} shown on the page'
        n_plots = page.eval_on_selector_all('.js-plotly-plot', 'els => els.length')
        assert n_plots >= 2, n_plots
        n_points = page.eval_on_selector('.a3-token-explorer .js-plotly-plot',
                                         'el => el.data.reduce((n, t) => n + (t.x ? t.x.length : 0), 0)')
        assert n_points > 0, 'token map has no points'
        # move the frame slider with the keyboard: the marker must follow (timed, key press -> plot changed)
        frame_ms = _press_and_wait(page, '.a3-time-explorer .a3-frame-slider .noUi-handle', ['ArrowRight'] * 5,
                                   '.a3-time-explorer', 'el.layout.shapes.map(s => [s.x0, s.y0])')
        # the checkpoint slider of the token map: the points must move
        ckpt_ms = _press_and_wait(page, '.a3-token-explorer .a3-checkpoint-slider .noUi-handle',
                                  ['ArrowLeft', 'ArrowLeft', 'ArrowRight', 'ArrowRight'],
                                  '.a3-token-explorer', 'el.data.map(t => t.x)')
        med = lambda v: sorted(v)[len(v) // 2]
        print(f'browser: slider key press -> plot updated, median of {len(frame_ms)}: frame {med(frame_ms):.0f} ms '
              f'(all {[round(x) for x in frame_ms]}); median of {len(ckpt_ms)}: checkpoint {med(ckpt_ms):.0f} ms '
              f'(all {[round(x) for x in ckpt_ms]})')
        page.evaluate("() => window.jupyterapp.commands.execute('application:toggle-left-area')")
        page.wait_for_timeout(800)
        shot = OUT/'jupyterlab_explorers.png'
        page.screenshot(path=str(shot), full_page=True)
        print(f'screenshot: {shot}')
        if st['stderr']: print('stderr of the notebook (not failing):', ''.join(st['stderr'])[:2000])
        errs = [c for c in console if not any(r.search(c) for r in BENIGN_CONSOLE)]
        assert not errs, f'browser console errors: {errs}'
    finally:
        page.close()


DOCS_LESSON = ('41_train.bap.ipynb', 'train.bap.html')  # the lesson whose figures the docs test looks at
DOCS_VIDEO = ('10_data.video.ipynb', 'data.video.html')  # the lesson that reads broken files on purpose
DECORD_LOG = ('moov atom not found', 'ERROR opening', 'video_reader.cc')  # decord's C++ log lines
# the lessons with image figures (plotly `image` traces: px.imshow, go.Image), run so their figures are on the pages
# (62_explore.time draws its image strips only in the widget: its page's figures hold none)
DOCS_IMAGES = ('12_data.synth.ipynb', '13_data.faces.ipynb', '06_own_video.ipynb', '71_prepare.ipynb')
SECTIONS = ['Learn the method', 'Run it for real']  # nbs/sidebar.yml's sections, in order
MD_IMAGE = 'images/architecture.svg'  # a markdown image of the index (nbs/images/, copied into the site)


@pytest.fixture(scope='module')
def docs_site(tmp_path_factory):
    "The docs site, built once for this module, with a few lessons run (the full build runs them all)."
    out = tmp_path_factory.mktemp('docs')/'site'
    t0 = time.time()
    runs = [a for nb in (DOCS_LESSON[0], DOCS_VIDEO[0], *DOCS_IMAGES) for a in ('--run', nb)]
    r = subprocess.run([sys.executable, str(ROOT/'.ci'/'build_docs.py'), '--out', str(out), '--fallback', *runs],
                       cwd=ROOT, capture_output=True, text=True, timeout=900)
    print(r.stdout[-2000:], r.stderr[-2000:])
    assert r.returncode == 0, f'docs build failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}'
    print(f'docs built in {time.time() - t0:.1f} s')
    return out


def test_docs_site_index(browser, docs_site):
    OUT.mkdir(parents=True, exist_ok=True)
    out = docs_site
    index = out/'index.html'
    assert index.exists()
    # every link resolves on this site: none to the hosted site nbdev assumes, none to a page that was not built
    hosted = {p.name: re.findall(r'a3lign-nb\.github\.io[^"<)\s]*', p.read_text(encoding='utf-8')) for p in out.glob('*.html')}
    assert not any(hosted.values()), {k: v[:3] for k, v in hosted.items() if v}
    local = {h.split('#')[0] for p in out.glob('*.html') for h in re.findall(r'href="([\w.\-]+\.html(?:#[^"]*)?)"', p.read_text(encoding='utf-8'))}
    assert not [h for h in local if not (out/h).exists()], sorted(h for h in local if not (out/h).exists())
    page = browser.new_page(viewport={'width': 1300, 'height': 1000})
    try:
        page.goto(index.as_uri())
        # the notebook map: a table in the index's main text linking to the notebooks' pages
        links = page.eval_on_selector_all('table a[href]',
                                          'els => els.map(e => e.getAttribute("href"))')
        pages = sorted({h.split('#')[0] for h in links if h.split('#')[0].endswith('.html')})
        assert len(pages) >= 10, f'the index has no notebook map (links in its tables: {links})'
        assert any('explore' in h for h in pages), f'the notebook map does not link the explorers: {pages}'
        assert 'tutorial.html' in pages, f'the notebook map does not link the end-to-end tutorial: {pages}'
        missing = [h for h in pages if not (out/h).exists()]
        assert not missing, f'linked from the notebook map but not built: {missing}'
        assert page.locator('table').first.is_visible()
        print(f'docs index: notebook map links {len(pages)} pages')
        shot = OUT/'docs_index.png'
        page.screenshot(path=str(shot), full_page=True)
        print(f'screenshot: {shot}')
    finally:
        page.close()


def test_docs_lesson_figures_offline(browser, docs_site):
    "A lesson page shows its plotly figures with the network off: plotly.js comes from the site, not a CDN."
    OUT.mkdir(parents=True, exist_ok=True)
    lesson = docs_site/DOCS_LESSON[1]
    assert lesson.exists(), f'{DOCS_LESSON[1]} not built'
    assert (docs_site/'plotly.min.js').exists(), 'plotly.js is not bundled in the site'
    text = lesson.read_text(encoding='utf-8')
    remote = re.findall(r'<(?:script|link)[^>]+(?:src|href)="(https?:[^"]+)"', text)
    assert not remote, f'the lesson page loads from the network: {remote}'
    ctx = browser.new_context(viewport={'width': 1300, 'height': 1000}, offline=True)
    page = ctx.new_page()
    console, requests = [], []
    page.on('console', lambda m: console.append(f'{m.type}: {m.text}') if m.type == 'error' else None)
    page.on('pageerror', lambda e: console.append(f'pageerror: {e}'))
    page.on('request', lambda r: requests.append(r.url) if not r.url.startswith(('file:', 'data:', 'blob:')) else None)
    try:
        t0 = time.time()
        page.goto(lesson.as_uri(), wait_until='load')
        page.wait_for_selector('.js-plotly-plot .main-svg', timeout=30_000)
        figs = page.eval_on_selector_all('.js-plotly-plot', """els => els.map(el => ({
            traces: (el.data || []).length,
            drawn: el.querySelectorAll('.main-svg .trace, .main-svg .scatterlayer path, .main-svg .heatmaplayer image').length}))""")
        print(f'docs lesson {DOCS_LESSON[1]}: {len(figs)} plotly figures rendered offline in {time.time() - t0:.1f} s: {figs}')
        assert len(figs) >= 2, f'expected the lesson\'s figures, found {len(figs)}'
        assert all(f['traces'] > 0 and f['drawn'] > 0 for f in figs), f'a figure without drawn traces: {figs}'
        shot = OUT/'docs_lesson.png'
        page.screenshot(path=str(shot), full_page=False)
        print(f'screenshot: {shot}')
        assert not requests, f'the lesson page asked the network for: {requests}'
        assert not console, f'browser console errors on the lesson page: {console}'
    finally:
        ctx.close()


def test_docs_video_lesson_has_no_decord_log(browser, docs_site):
    "The video lesson reads a truncated and a non-video file on purpose: its outputs show no decord log lines."
    page = browser.new_page()
    try:
        page.goto((docs_site/DOCS_VIDEO[1]).as_uri())
        outputs = page.eval_on_selector_all('.jp-OutputArea-output', 'els => els.map(e => e.innerText)')
        assert outputs, f'{DOCS_VIDEO[1]} shows no outputs: was the notebook run?'
        leaked = [o for o in outputs if any(n in o for n in DECORD_LOG)]
        assert not leaked, f'decord log lines in the outputs of {DOCS_VIDEO[1]}: {leaked}'
    finally:
        page.close()


# Each image trace of a figure: its subplot's area in the figure's div (CSS pixels), from plotly's own layout.
# An image trace plotly.js cannot draw (a `source` that is a list) is made invisible: `drawn` false.
JS_IMAGE_FIGURES = """() => [...document.querySelectorAll('.js-plotly-plot')].map((el, i) => {
  const fl = el._fullLayout, ax = id => fl[(id || '').replace(/^(x|y)/, '$1axis')];
  const traces = [];
  (el.data || []).forEach((t, k) => {
    if (t.type !== 'image') return;
    const f = (el._fullData || []).find(d => d.index === k), xa = f && ax(f.xaxis), ya = f && ax(f.yaxis);
    traces.push({drawn: !!(f && f.visible !== false && xa && ya), src: Array.isArray(t.source) ? 'list' : typeof t.source,
                 x: xa ? xa._offset : 0, y: ya ? ya._offset : 0, w: xa ? xa._length : 0, h: ya ? ya._length : 0});
  });
  return {i, id: el.id, traces};
}).filter(f => f.traces.length)"""


def _blank(png: bytes, box: dict) -> tuple[bool, float, int]:
    "Is the area `box` of a screenshot one flat colour? (blank, standard deviation of its pixels, distinct colours)."
    import io
    import numpy as np
    from PIL import Image
    a = np.asarray(Image.open(io.BytesIO(png)).convert('RGB')).astype(np.float64)
    x0, y0 = max(0, int(box['x']) + 2), max(0, int(box['y']) + 2)  # inside the plot area, off its edge
    a = a[y0:max(y0 + 1, int(box['y'] + box['h']) - 2), x0:max(x0 + 1, int(box['x'] + box['w']) - 2)]
    sd, colours = float(a.std()), len(np.unique(a.reshape(-1, 3), axis=0))
    return sd < 2.0 or colours < 4, sd, colours


def _nav(page) -> tuple[list[str], list[str]]:
    "The left nav of a fallback page: its section headings and its page links, in order."
    return (page.eval_on_selector_all('#a3-nav .a3-section', 'els => els.map(e => e.textContent.trim())'),
            page.eval_on_selector_all('#a3-nav a[href]', 'els => els.map(e => e.getAttribute("href"))'))


def test_docs_image_figures_not_blank(browser, docs_site):
    """Every image figure (a plotly `image` trace: px.imshow, go.Image) on every page shows pixels in its plot area;
    every `<img>` loads. An image whose `source` became a list (nbdev's processing splits nested `source` keys) is
    drawn by plotly.js as nothing: a flat area."""
    OUT.mkdir(parents=True, exist_ok=True)
    ctx = browser.new_context(viewport={'width': 1300, 'height': 1000}, offline=True)
    page = ctx.new_page()
    console = []
    page.on('console', lambda m: console.append(f'{m.type}: {m.text}') if m.type == 'error' else None)
    page.on('pageerror', lambda e: console.append(f'pageerror: {e}'))
    try:
        page.goto((docs_site/'index.html').as_uri())
        _, pages = _nav(page)
        counts, bad, broken_img = {}, [], []
        for name in pages:
            page.goto((docs_site/name).as_uri(), wait_until='load')
            broken_img += [f'{name}: {s}' for s in page.eval_on_selector_all(
                'img', 'els => els.filter(e => !(e.complete && e.naturalWidth > 0)).map(e => e.getAttribute("src").slice(0, 80))')]
            figs = page.evaluate(JS_IMAGE_FIGURES)
            counts[name] = len(figs)
            for f in figs:
                if not all(t['drawn'] and t['src'] in ('string', 'undefined') for t in f['traces']):
                    bad.append(f'{name} figure #{f["i"]} ({f["id"]}): image trace(s) plotly.js does not draw '
                               f'(source: {[t["src"] for t in f["traces"]]}, drawn: {[t["drawn"] for t in f["traces"]]})')
                    continue
                div = page.locator(f'#{f["id"]}')
                for tries in range(6):  # plotly draws an image's source once it is decoded: a moment after load
                    png = div.screenshot()
                    res = [_blank(png, t) for t in f['traces']]
                    if not any(b for b, _, _ in res): break
                    page.wait_for_timeout(500)
                (OUT/f'image_{name.removesuffix(".html")}_{f["i"]}.png').write_bytes(png)
                if any(b for b, _, _ in res):
                    bad.append(f'{name} figure #{f["i"]} ({f["id"]}): blank image trace(s), (sd, colours) = '
                               f'{[(round(sd, 2), n) for _, sd, n in res]}')
        print('image figures checked non-blank, per page: '
              + ', '.join(f'{k}: {v}' for k, v in counts.items() if v) + f'; total {sum(counts.values())} on {len(pages)} pages')
        assert not bad, 'image figures without pixels:\n' + '\n'.join(bad)
        assert not broken_img, f'images that did not load: {broken_img}'
        for lesson in DOCS_IMAGES:  # the lessons run for this: their pages must have image figures to check
            pg = next(n for n in pages if lesson.split('_', 1)[1].removesuffix('.ipynb') + '.html' == n)
            assert counts[pg], f'{pg} ({lesson}, run for this test) has no image figure'
        assert not console, f'browser console errors: {console}'
    finally:
        ctx.close()


def test_docs_markdown_image_loads(browser, docs_site):
    "The index embeds `images/architecture.svg` with markdown: the site carries nbs/images/, the `<img>` loads."
    assert (docs_site/MD_IMAGE).exists(), f'{MD_IMAGE} not copied into the site'
    page = browser.new_page(viewport={'width': 1300, 'height': 1000})
    try:
        page.goto((docs_site/'index.html').as_uri(), wait_until='load')
        imgs = page.eval_on_selector_all(f'img[src$="{MD_IMAGE}"]', 'els => els.map(e => [e.complete, e.naturalWidth, e.naturalHeight])')
        assert imgs, f'index.html has no <img> of {MD_IMAGE} (nbs/index.ipynb should embed it: ![...]({MD_IMAGE}))'
        assert all(c and w > 0 and h > 0 for c, w, h in imgs), f'{MD_IMAGE} did not load: {imgs}'
        page.locator(f'img[src$="{MD_IMAGE}"]').first.scroll_into_view_if_needed()
        print(f'index.html: {MD_IMAGE} loads ({imgs[0][1]} x {imgs[0][2]} px)')
    finally:
        page.close()


def test_docs_reading_order(browser, docs_site):
    """The nav shows nbs/sidebar.yml's two sections in order, every notebook's page once, and every page has previous/next
    links (top and bottom) to its neighbours in that order, across both sections; following "next" gets there."""
    import yaml
    sb = yaml.safe_load((ROOT/'nbs'/'sidebar.yml').read_text(encoding='utf-8'))['website']['sidebar']['contents']
    page_of = lambda nb: 'index.html' if nb == 'index.ipynb' else re.sub(r'^\d+[a-z]?_', '', nb.removesuffix('.ipynb')) + '.html'
    want = [(sec['section'], page_of(n)) for sec in sb for n in sec['contents']]  # (section, page) in reading order
    page = browser.new_page(viewport={'width': 1300, 'height': 1000})
    try:
        page.goto((docs_site/'index.html').as_uri())
        sections, pages = _nav(page)
        assert sections == SECTIONS, sections
        assert pages[:2] == ['index.html', 'tutorial.html'], pages[:2]
        got = page.evaluate("""() => { let sec = null; const out = [];
            for (const e of document.querySelectorAll('#a3-nav .a3-section, #a3-nav a[href]'))
                if (e.matches('.a3-section')) sec = e.textContent.trim(); else out.push([sec, e.getAttribute('href')]);
            return out; }""")
        assert [tuple(x) for x in got] == want, f'the nav is not nbs/sidebar.yml\'s order:\n{got}\n{want}'
        for i, name in enumerate(pages):
            if not page.url.endswith('/' + name): page.goto((docs_site/name).as_uri())  # (the last click got here)
            want_prev, want_next = (pages[i - 1] if i else None), (pages[i + 1] if i + 1 < len(pages) else None)
            for where in ('top', 'bottom'):
                got = page.evaluate(f"""() => ['prev', 'next'].map(r => {{
                    const a = document.querySelector('.a3-pager.a3-{where} a[rel=' + r + ']'); return a && a.getAttribute('href'); }})""")
                assert got == [want_prev, want_next], f'{name}, {where}: previous/next {got}, expected {[want_prev, want_next]}'
            assert _nav(page) == (sections, pages), f'{name}: another nav'
            if want_next:  # the link works: a click arrives at the next page, marked current in the nav
                page.locator('.a3-pager.a3-bottom a[rel=next]').click()
                page.wait_for_url(f'**/{want_next}')
                assert page.eval_on_selector('#a3-nav a.current', 'e => e.getAttribute("href")') == want_next
        print(f'reading order: {len(pages)} pages in {len(sections)} sections; previous/next links followed on each')
    finally:
        page.close()
