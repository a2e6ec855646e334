#!/usr/bin/env python
"""Write README.md from nbs/index.ipynb (what `nbdev_readme` does, without quarto).

`nbdev_readme` renders the index notebook with quarto, a binary that cannot be installed where only
package registries are reachable (see .ci/build_docs.py). The index notebook is all prose, so its
markdown cells are the README; links to other notebooks are made relative to the repository root.
With quarto on PATH, `nbdev_readme` gives an equivalent file.

    python .ci/readme.py          # rewrite README.md
    python .ci/readme.py --check  # exit 1 if README.md is not what index.ipynb gives
"""
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def render() -> str:
    nb = json.loads((ROOT/'nbs'/'index.ipynb').read_text(encoding='utf-8'))
    parts = []
    for cell in nb['cells']:
        src = ''.join(cell['source']).strip()
        if not src: continue
        if cell['cell_type'] == 'markdown': parts.append(src)
        elif cell['cell_type'] == 'code' and not src.startswith('#|'): parts.append(f'```python\n{src}\n```')
    text = '\n\n'.join(parts) + '\n'
    text = re.sub(r'\]\((\d\d[\w.]*\.ipynb)\)', r'](nbs/\1)', text)  # notebook links from the repo root
    text = re.sub(r'\]\((images/[^)\s]+)\)', r'](nbs/\1)', text)  # the notebooks' images too
    return ('<!-- generated from nbs/index.ipynb by .ci/readme.py: edit the notebook, not this file -->\n\n' + text)


if __name__ == '__main__':
    text, out = render(), ROOT/'README.md'
    if '--check' in sys.argv:
        if out.read_text(encoding='utf-8') != text:
            sys.exit('README.md is out of step with nbs/index.ipynb: run `python .ci/readme.py` and commit.')
    else:
        out.write_text(text, encoding='utf-8')
