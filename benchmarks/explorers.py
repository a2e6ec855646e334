"""How long the explorers take to open and to answer a control, on the shipped demo run (CPU).

    python benchmarks/explorers.py [--repeats 5] [--umap]

Prints, for each explorer: the time to build it from the shipped run (load checkpoints, read clips,
features) and to open its widget, then the median time for the Python side of a control move
(`set(...)` up to the FigureWidget holding the new data; the browser's redraw comes on top, see the
browser test's printout). `--umap` adds the UMAP switch (its first fit includes numba's JIT).
"""
import argparse
import statistics
import time

import torch


def timed(f):
    t0 = time.perf_counter(); out = f(); return out, time.perf_counter() - t0


def median_ms(ex, changes, repeats):
    ts = []
    for i in range(repeats):
        for ch in changes:
            _, t = timed(lambda: ex.set(**ch)); ts.append(t)
    return 1000 * statistics.median(ts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--repeats', type=int, default=5)
    ap.add_argument('--umap', action='store_true')
    a = ap.parse_args()
    torch.set_num_threads(1)
    from a3lign_nb.explore.time import TimeExplorer
    from a3lign_nb.explore.tokens import TokenExplorer
    tok, t_build = timed(lambda: TokenExplorer.from_samples(method='pca'))
    _, t_open = timed(tok.widget)
    names = list(tok.checkpoints)
    print(f'token explorer: build {t_build:.2f} s (checkpoints {len(names)}, points {len(tok.features()[1])}), widget {t_open:.2f} s')
    print(f'  checkpoint slider: median {median_ms(tok, [dict(checkpoint=n) for n in names], a.repeats):.1f} ms')
    print(f'  classes: median {median_ms(tok, [dict(classes=tok.all_classes[:3]), dict(classes=tok.all_classes)], a.repeats):.1f} ms')
    if a.umap:
        _, t = timed(lambda: tok.set(method='umap'))
        print(f'  switch to UMAP (first fit, with JIT): {t:.2f} s')
        print(f'  UMAP n_neighbors (new fit each): median {median_ms(tok, [dict(n_neighbors=k) for k in (5, 10, 15)], 1):.0f} ms')
    tim, t_build = timed(lambda: TimeExplorer.from_samples(backbone=tok.model.backbone))
    _, t_open = timed(tim.widget)
    print(f'time explorer: build {t_build:.2f} s ({len(tim.clips)} clips), widget (reads the first clip) {t_open:.2f} s')
    print(f'  frame slider: median {median_ms(tim, [dict(frame=f) for f in range(tim.T)], a.repeats):.1f} ms')
    print(f'  shuffle toggle: median {median_ms(tim, [dict(shuffled=True), dict(shuffled=False)], a.repeats):.1f} ms')
    print(f'  heatmap class: median {median_ms(tim, [dict(cls=c) for c in tim.classes], a.repeats):.1f} ms')
    _, t = timed(lambda: tim.set(clip=1))
    print(f'  a new clip (decode + features + analysis): {1000 * t:.0f} ms; again (cached): '
          f'{median_ms(tim, [dict(clip=0), dict(clip=1)], a.repeats):.1f} ms')


if __name__ == '__main__':
    main()
