"""Per-step cost of A3lign-DFER training from cached frame features, split into the text tower over
all C*S MAT sentences and the rest (JAS, logits, loss), per BAP stage; and the memory of MAT.

    python benchmarks/bench_step.py                       # ViT-B/16 size, random weights, CPU, B=4
    python benchmarks/bench_step.py --backbone ViT-L-14-quickgelu --device cuda --batch 64

Random CLIP weights (no download): the cost does not depend on the weights' values.
"""
import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from a3lign_nb.backbone import load_backbone
from a3lign_nb.models.a3lign import A3lignConfig, A3lignDFER
from a3lign_nb.train import bap


def _sync(dev):
    if dev.type == 'cuda': torch.cuda.synchronize(dev)


def _timed(fn, dev, reps):
    fn(); _sync(dev)  # warm-up
    ts = []
    for _ in range(reps):
        t = time.perf_counter(); fn(); _sync(dev); ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--backbone', '--clip', default='ViT-B-16-quickgelu', help='open_clip model name (random weights)')
    ap.add_argument('--classes', type=int, default=7, help='C (DFEW: 7, MAFW: 11)')
    ap.add_argument('--sentences', type=int, default=16, help='S (paper: 16)')
    ap.add_argument('--tokens', type=int, default=64, help='T tokens per sentence (paper: 64)')
    ap.add_argument('--frames', type=int, default=16, help='frames per clip (paper: 16)')
    ap.add_argument('--batch', type=int, default=4, help='clips per step (cached features)')
    ap.add_argument('--reps', type=int, default=2, help='timed repetitions after one warm-up (median reported)')
    ap.add_argument('--device', default='cpu')
    ap.add_argument('--threads', type=int, default=None, help='torch.set_num_threads (CPU)')
    a = ap.parse_args(argv)
    if a.threads: torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    torch.manual_seed(0)
    backbone = load_backbone(a.backbone, None, device=dev)
    classes = tuple(f'class{i}' for i in range(a.classes))
    cfg = A3lignConfig(backbone=a.backbone, classes=classes, num_sentences=a.sentences,
                       tokens_per_sentence=a.tokens, num_segments=a.frames)
    model = A3lignDFER(cfg, backbone).to(dev)
    feats = torch.randn(a.batch, a.frames, backbone.embed_dim, device=dev)
    y = torch.randint(0, a.classes, (a.batch,), device=dev)
    C, S, T, W = model.mat.shape
    print(f'{a.backbone} (random weights) on {dev}, threads={torch.get_num_threads()}: C={C} S={S} T={T} W={W} '
          f'D={backbone.embed_dim}, batch {a.batch} x {a.frames} frames of cached features')
    n = C * S * T * W
    print(f'MAT parameters: {n:,} = {n * 4 / 2**20:.1f} MiB fp32; with gradient + SGD momentum {3 * n * 4 / 2**20:.1f} MiB')
    jas_n = sum(p.numel() for p in model.jas.parameters())
    print(f'JAS parameters: {jas_n:,} = {jas_n * 4 / 2**20:.1f} MiB fp32')
    print(f'text tower input per step: {C * S} sentences x {T + 2} tokens')

    sched = bap.BAPSchedule(1, 1, 1)
    rows = []
    for stage in sched.stages:
        bap.apply_stage(model, stage)
        opt = bap.make_optimizer(model, stage)
        mat_trains = stage.train_mat

        def text_part():
            with torch.set_grad_enabled(mat_trains):
                s = model.sentence_features()  # [C, S, D]
            if mat_trains: s.sum().backward()
        def rest_part():  # JAS + logits + loss (+ backward), sentence features given
            s = sents.detach().requires_grad_(mat_trains)
            v = model.jas.video_features(feats, stage.temporal)
            c = model.jas.class_features(s)
            F.cross_entropy(model.jas.logits(v, c), y).backward()
        def full_step():
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(feats, temporal=stage.temporal), y).backward()
            opt.step()
        with torch.no_grad(): sents = model.sentence_features()
        t_text = _timed(text_part, dev, a.reps) if mat_trains else 0.0
        t_rest = _timed(rest_part, dev, a.reps)
        t_step = _timed(full_step, dev, a.reps)
        model.zero_grad(set_to_none=True)
        rows.append((stage.name, t_text, t_rest, t_step))
    print(f"\n{'stage':8s} {'text tower fwd+bwd':>19s} {'rest fwd+bwd':>13s} {'full step':>10s}  note")
    for name, tt, tr, ts in rows:
        note = {'text': 'MAT trains: text tower forward + backward over all sentences',
                'image': 'text side frozen: class features cached, the text tower does not run',
                'joint': 'everything trains'}[name]
        print(f'{name:8s} {tt * 1e3:17.0f}ms {tr * 1e3:11.1f}ms {ts * 1e3:8.0f}ms  {note}')
    if dev.type == 'cpu':
        with torch.no_grad():
            t_fwd = _timed(lambda: model.sentence_features(), dev, a.reps)
        print(f'text tower forward only (evaluation without the cache): {t_fwd * 1e3:.0f}ms')


if __name__ == '__main__':
    main()
