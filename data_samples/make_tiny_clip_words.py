#!/usr/bin/env python
"""Pretrain BOTH towers of the tiny CLIP (`a3lign-tiny-rn`) on synthetic faces and a small vocabulary (tag `words`).

    python data_samples/make_tiny_clip_words.py     # writes a3lign_nb/model_configs/a3lign-tiny-rn-words.safetensors
    # measured: 7 min 40 s and 8 min 20 s wall (5.4 and 5.7 min of CPU), one thread, on a 2-core machine shared with
    # other jobs (render ~100 s, train ~300 s, figures ~70 s); both runs gave the same tensors bit for bit (the
    # metadata differs only in its recorded timings)
    python data_samples/make_tiny_clip_words.py --steps 100 --clips-per-class 40 --out /tmp/x.safetensors   # a quick try

Why: the `synthetic` weights (`make_tiny_clip.py`) trained only the image tower, against 7 prompts through a RANDOM
text tower: no word means anything to that CLIP (a learned prompt's nearest words, MAT's class-name initialisation,
a sentence like "a smile that fades"). Here the text tower learns too, on a small vocabulary, so that the words the
package uses (the class names as the data sets spell them, the time set's names with '_' -> ' ', the prompt
templates of MAT and of the no-MAT ablation) mean what they say, as far as synthetic cartoon faces can teach it.

Data (deterministic for a given `--seed` and `--steps`). Fresh clips rendered in memory by `a3lign_nb.data.synth`,
seeded `[seed, part, label, k]` with `seed=2000` and part 0 (appearance, training), 1 (time set, training),
2 and 3 (the same, held out for the figures). The shipped sets used `[0, ...]` (`clip_plan`), the old script
`[1000, label, k]`: no shipped clip, train or test, is trained on or used to choose anything. Each clip keeps 8
evenly spaced frames with its expression envelope `track['phase']` and a STRENGTH per frame: the class's key action
unit (smile for happiness, inner brow for sadness, ...), which is intensity x envelope x apex, from 0 to 1.

Captions. Three kinds of (image, caption) items meet in one batch:
1. frame captions, on ONE frame: the class as an adjective or a noun in a template ("a photo of a happy face.",
   "this person looks furious.", "a photo of a face showing sadness.", the bare word "happiness"), and, for a
   frame whose strength is < 0.5 ("slight", >= 0.2) or >= 0.75 ("strong"), an intensity word ("a slight smile.",
   "a strongly angry face.", "intense fear."). Neutral: a frame of a neutral clip, or one whose envelope < 0.05.
   The time-set clips' frames at a beat's apex serve too, as happy or sad frames.
2. clip captions on the appearance clips: "a face that turns angry." / "neutral, then surprised." describe the part
   from the start to the apex, "a smile that fades." / "happy, then neutral." the part from the apex to the end
   (only where the clip starts, or ends, neutral).
3. clip captions on time-set clips, the WHOLE clip: the class name ("happy then sad"), and sentences ("happy, then
   sad, then happy again.", "alternating between happy and sad.").
A clip caption meets the MEAN of the (normalised) features of the frames it describes (4 of them, each clip
augmented as one). What that can and cannot teach about order: a mean of frame features is the same for any order
of the frames, so "a face that turns angry" and "anger that fades" meet the same kind of image (neutral and angry
frames mixed), and so do "happy then sad", "sad then happy" and "alternating between happy and sad" (two happy and
two sad beats each). The loss therefore counts them as the same meaning (the batch's items of the same meaning are
positives of each other, not negatives: a multi-positive CLIP loss), and the model learns what the words say about
CONTENT (which expressions, how strong) and nothing about ORDER: on time-set clips, "happy then sad" is ranked above
"sad then happy" at chance (figure e). Order has to come from a temporal model over the frames (A3lign's JAS), not
from a frame-mean; figure `time_quarters_zero_shot` shows the words working once the frames are read in order (each
quarter's mean against "happy"/"sad").

Held out for the figures: three templates (phrasings never seen in training) and two synonyms per class that NEVER
caption an image. A text-only thesaurus term gives the held-out synonyms their meaning: a training-template sentence
with the synonym is pulled towards the same sentence with a training word of its class (InfoNCE between the two
sentence sets, same class = positive). So a held-out synonym is known through the thesaurus only, and never in a
held-out template: figure (a) measures both at once.

What learns: the image tower (all of `visual.*`; it starts from the `synthetic` weights' image tower, shipped beside
this file and rebuilt by `make_tiny_clip.py`, and learns at half the learning rate. From the seeded random tower
instead, in the same 400 steps, nothing is learnt well: `--init-visual random --visual-lr-scale 1` measured a
linear probe of 0.25 and held-out zero-shot of 0.25 on the shipped test clips, against 0.76 and 0.63 warm-started),
the text transformer, `ln_final`, `text_projection`, `positional_embedding`, the logit scale, and the
token-embedding rows of the vocabulary's tokens only (a learned
delta on those rows; the other ~49k rows are never touched and stay the seeded random ones bit for bit). Positions
beyond the longest caption get no gradient and keep their seeded values too. Loss: the symmetric multi-positive CLIP
loss (image <-> text, learned temperature clamped at 100) + the thesaurus term; AdamW (weight decay on weight
matrices only), warm-up then cosine.

Saved (fp32, atomically): `visual.*`, the text tower's tensors, `logit_scale`, and the changed token-embedding rows
sparsely: `token_embedding.rows` int64 [V] and `token_embedding.values` [V, E] (the rows' final values). Metadata:
`a3lign_base_seed` (a partial checkpoint over the seeded random model, as `synthetic`), `vocabulary` (the known words:
`FrozenCLIP.vocabulary`), `vocabulary_split`, the figures and the command. `load_backbone('a3lign-tiny-rn', 'words')`.

Figures (held-out faces: fresh generator seeds, 8 frames a clip, AND the shipped test clips, 16 frames a clip; a clip
is the mean of its frame features, test-time transforms):
(a) zero-shot with held-out templates x held-out synonyms (the class's prompts averaged), and the mean over single
prompts; (b) with training templates x training words; (c) the same prompts through the OLD `synthetic` weights;
(d) retrieval on fresh frames: image -> caption recall@1 among 13 intensity captions ("a slightly happy face.",
"a strongly happy face.", ..., "a neutral face."; averaged over the captions), and text -> image precision@5; (e) time captions: the time
class's name ranked above its reversal's, and 6-way zero-shot (both at chance by construction, see above);
(f) the linear probe on the shipped set (as `make_tiny_clip.py`); (g) zero-shot of MAT's starting sentences
(`init='class_name'`: the class name, then random tokens up to 64, 66 positions, 4 sentences averaged) on the shipped
test clips: what the learned prompts start from. The captions are at most 13 tokens long: positions 13 to 76 of the
positional embedding get no gradient (they keep their seeded values, std 0.01), yet (g) shows the 66-position
sentences read well.
"""
from __future__ import annotations

import argparse
import functools
import json
import math
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_tiny_clip import (BASE, CLIP_DIR, ROOT, SHIPPED, TEXT_SEED, common_args, linear_probe, parse, prompts,  # noqa: E402
                            save_tensors, seeded_clip, shipped_features)

SHIPPED_TIME = ROOT/'data_samples'/'synthetic_time'
TAG = 'words'
KEPT = 8  # frames kept per rendered clip, evenly spaced
STRENGTH_AU = dict(happiness='smile', sadness='brow_inner_up', anger='brow_furrow', surprise='brow_up', fear='eye_open',
                   disgust='nose_wrinkle')  # the action unit that carries each class (apex value up to 1)
SLIGHT, STRONG, CLEAR, NEUTRAL_BELOW = 0.2, 0.75, 0.5, 0.05  # strength buckets: [.2, .5) slight, [.5, .75) medium, >= .75 strong

# class -> (training adjectives, HELD-OUT adjectives: never caption an image, known through the thesaurus only)
ADJECTIVES = dict(
    happiness=(('happy', 'smiling', 'cheerful', 'glad'), ('joyful', 'delighted')),
    sadness=(('sad', 'unhappy', 'sorrowful', 'gloomy'), ('miserable', 'downcast')),
    neutral=(('neutral', 'calm', 'expressionless'), ('relaxed', 'blank')),
    anger=(('angry', 'furious', 'mad', 'annoyed'), ('irritated', 'enraged')),
    surprise=(('surprised', 'astonished', 'amazed'), ('startled', 'shocked')),
    disgust=(('disgusted', 'revolted', 'repulsed'), ('sickened', 'nauseated')),
    fear=(('fearful', 'afraid', 'scared'), ('frightened', 'terrified')))
NOUNS = dict(happiness=('happiness', 'joy', 'smile'), sadness=('sadness', 'sorrow', 'frown'), neutral=('neutral', 'calmness'),
             anger=('anger', 'rage', 'scowl'), surprise=('surprise', 'astonishment'), disgust=('disgust', 'revulsion', 'sneer'),
             fear=('fear', 'terror'))  # the first is the class name as the data sets spell it
ADJ_TEMPLATES = ('a photo of a {} face.', 'this person looks {}.', 'a {} face.', 'a {} person.', '{}')
NOUN_TEMPLATES = ('a photo of a face showing {}.', 'a face whose expression shows {} over time.', 'a face full of {}.', '{}')  # the first two: the no-MAT ablation's and MAT's description templates
HELD_OUT_TEMPLATES = ('an image of someone who is {}.', 'the person in the picture is {}.', 'a close-up of a {} individual.')
INTENSITY = dict(slight=(('slightly',), ('slight', 'mild')), strong=(('strongly', 'intensely'), ('strong', 'intense')))  # (adverbs, adjectives)
TURNS = ('a face that turns {a}.', 'neutral, then {a}.', 'a calm face becoming {a}.')  # start -> apex
FADES = ('a {f} that fades.', '{n} that fades.', '{a}, then neutral.', 'a {a} face that fades to neutral.')  # apex -> end
FACE_NOUNS = ('smile', 'frown', 'scowl', 'sneer')  # nouns that take an article
TIME_SENTENCES = dict(  # besides the class name itself ('happy then sad'); H = happy, S = sad
    happy_then_sad=('happy, then sad.', 'a smile that turns into a frown.'),
    sad_then_happy=('sad, then happy.', 'a frown that turns into a smile.'),
    happy_sad_happy=('happy, then sad, then happy again.',),
    sad_happy_sad=('sad, then happy, then sad again.',),
    happy_sad_alternating=('alternating between happy and sad.',),
    sad_happy_alternating=('alternating between sad and happy.',))
REVERSED = dict(happy_then_sad='sad_then_happy', happy_sad_happy='sad_happy_sad', happy_sad_alternating='sad_happy_alternating')


@functools.lru_cache(maxsize=None)
def fill(template: str, *args, **kw) -> str:
    "`template.format(...)` with 'a' before a vowel made 'an'."
    return re.sub(r'\ba (?=[aeiou])', 'an ', template.format(*args, **kw))


@functools.lru_cache(maxsize=None)
def frame_captions(c: str, bucket: str | None) -> list[tuple[str, tuple]]:
    "Training captions of a frame of class `c` with strength `bucket` -> [(text, key)]; key ('f', class, intensity or None)."
    adj, nouns = ADJECTIVES[c][0], NOUNS[c]
    out = [(fill(t, w), ('f', c, None)) for t in ADJ_TEMPLATES for w in adj] + [(fill(t, n), ('f', c, None)) for t in NOUN_TEMPLATES for n in nouns]
    if bucket in INTENSITY:
        advs, adjs = INTENSITY[bucket]
        out += [(fill(t, f'{v} {w}'), ('f', c, bucket)) for t in ('a {} face.', 'this person looks {}.') for v in advs for w in adj]
        out += [(fill('a {} {}.' if n in FACE_NOUNS else '{} {}.', i, n), ('f', c, bucket)) for i in adjs for n in nouns]
    return out


@functools.lru_cache(maxsize=None)
def mix_captions(c: str, part: str) -> list[tuple[str, tuple]]:
    "Clip captions of an appearance clip of class `c`: `part` 'turns' (start -> apex) or 'fades' (apex -> end); key ('m', c)."
    adj, nouns = ADJECTIVES[c][0], NOUNS[c]
    slots = dict(a=[dict(a=a) for a in adj], f=[dict(f=n) for n in nouns if n in FACE_NOUNS],
                 n=[dict(n=n) for n in nouns if n not in FACE_NOUNS])
    return [(fill(t, **kw), ('m', c)) for t in (TURNS if part == 'turns' else FADES) for kw in slots[re.search(r'{(\w)}', t)[1]]]


@functools.lru_cache(maxsize=None)
def time_captions(name: str) -> list[tuple[str, tuple]]:
    "Whole-clip captions of a time-set clip: its name with '_' -> ' ' and the sentences; key ('t',): order is not visible to a mean."
    return [(name.replace('_', ' '), ('t',))] + [(s, ('t',)) for s in TIME_SENTENCES[name]]


def compatible(img: tuple, cap: tuple) -> bool:
    "Does caption key `cap` describe image key `img`? Frames: same class, and the intensity (if any) is the frame's."
    if img[0] != cap[0]: return False
    if img[0] == 'f': return img[1] == cap[1] and (cap[2] is None or cap[2] == img[2])
    return img[1:] == cap[1:] if img[0] == 'm' else True


def thesaurus_pairs() -> list[tuple[str, str, str]]:
    "Text-only pairs (held-out synonym sentence, the same sentence with a training word, class), training templates only."
    return [(fill(t, s), fill(t, w), c) for c, (train, held) in ADJECTIVES.items() for s in held for w in train for t in ADJ_TEMPLATES]


def training_texts(time_classes) -> list[str]:
    "Every sentence the text tower is trained on (captions and thesaurus pairs): its tokens are the vocabulary's."
    texts = [t for c in ADJECTIVES for b in (None, *INTENSITY) for t, _ in frame_captions(c, b)]
    texts += [t for c in ADJECTIVES if c != 'neutral' for p in ('turns', 'fades') for t, _ in mix_captions(c, p)]
    texts += [t for n in time_classes for t, _ in time_captions(n)] + [s for p in thesaurus_pairs() for s in p[:2]]
    return sorted(set(texts))


def words_of(texts) -> list[str]:
    "The words of some sentences, sorted (punctuation stripped)."
    return sorted({w.strip('.,') for t in texts for w in t.split()} - {''})


def vocabulary_split(time_classes) -> dict:
    "The vocabulary's parts, as stored in the metadata."
    return dict(training_adjectives={c: list(v[0]) for c, v in ADJECTIVES.items()}, nouns={c: list(v) for c, v in NOUNS.items()},
                held_out_synonyms={c: list(v[1]) for c, v in ADJECTIVES.items()}, training_templates=list(ADJ_TEMPLATES + NOUN_TEMPLATES),
                held_out_templates=list(HELD_OUT_TEMPLATES), intensity={k: list(a + b) for k, (a, b) in INTENSITY.items()},
                time_names=[n.replace('_', ' ') for n in time_classes])


# ---------------------------------------------------------------------------------------------------------------- data
def strength(tr: dict, c: str) -> np.ndarray:
    "Per-frame strength of class `c` (its key action unit, 0..1); zeros for neutral."
    return np.zeros(len(tr['phase'])) if c == 'neutral' else np.clip(tr[STRENGTH_AU[c]], 0, 1)


def bucket_of(s: float) -> str | None:
    return 'slight' if s < CLEAR else ('strong' if s >= STRONG else 'medium')


def render_pool(per_class: int, seed: int, part: int, kind: str, frames=(12, 16), size: int = 64) -> dict:
    """Fresh clips seeded `[seed, part, label, k]`, `KEPT` evenly spaced frames each -> dict(frames uint8 [N, K, S, S, 3],
    label [N], keys, mix, classes, kind).

    `keys[n][k]`: the key of frame k of clip n as a frame item, ('f', class, strength bucket), None where ambiguous;
    `mix[n]`: for an appearance clip, the kept-frame ranges {'turns': (0, apex + 1), 'fades': (apex, K)} of the parts
    that start / end neutral (None where they do not)."""
    from a3lign_nb.data.synth import SYNTH_CLASSES, TIME_CLASSES, render_clip
    classes = SYNTH_CLASSES if kind == 'appearance' else TIME_CLASSES
    xs, labels, keys, mix = [], [], [], []
    for label in range(len(classes)):
        for k in range(per_class):
            rng = np.random.default_rng([seed, part, label, k])
            n = int(rng.integers(frames[0], frames[1] + 1))
            x, tr = render_clip(label, n, size, rng, return_track=True, kind=kind)
            idx = np.linspace(0, n - 1, KEPT).round().astype(int)
            xs.append(x[idx]); labels.append(label)
            if kind == 'time':  # a beat's frames are happy or sad frames; between beats, ambiguous
                h, s = tr['happiness'][idx], tr['sadness'][idx]
                st = dict(happiness=strength(tr, 'happiness')[idx], sadness=strength(tr, 'sadness')[idx])
                keys.append([('f', 'happiness', bucket_of(st['happiness'][j])) if h[j] > .5 and st['happiness'][j] >= SLIGHT else
                             ('f', 'sadness', bucket_of(st['sadness'][j])) if s[j] > .5 and st['sadness'][j] >= SLIGHT else None
                             for j in range(KEPT)])
                mix.append(None)
                continue
            c, ph, st = classes[label], tr['phase'][idx], strength(tr, classes[label])[idx]
            if c == 'neutral': keys.append([('f', 'neutral', None)] * KEPT); mix.append(None); continue
            keys.append([('f', 'neutral', None) if ph[j] < NEUTRAL_BELOW else ('f', c, bucket_of(st[j])) if st[j] >= SLIGHT else None
                         for j in range(KEPT)])
            top = int(np.argmax(ph))
            ok = st.max() >= CLEAR
            mix.append(dict(turns=(0, top + 1) if ok and ph[0] < NEUTRAL_BELOW and top >= 2 else None,
                            fades=(top, KEPT) if ok and ph[-1] < NEUTRAL_BELOW and top <= KEPT - 3 else None))
    return dict(frames=np.stack(xs), label=np.array(labels), keys=keys, mix=mix, classes=classes, kind=kind)


# ---------------------------------------------------------------------------------------------------------------- text
class WordTower(nn.Module):
    "The text tower with a learned delta on the vocabulary's token-embedding rows: `encode(ids [N, L]) -> [N, D]`."
    def __init__(self, backbone, rows: torch.Tensor):
        super().__init__()
        self.backbone, self.rows = backbone, rows
        slot = torch.full((backbone.vocab_size,), len(rows), dtype=torch.long)
        slot[rows] = torch.arange(len(rows))
        self.register_buffer('slot', slot)  # token id -> row of `delta` (len(rows): no delta)
        self.delta = nn.Parameter(torch.zeros(len(rows), backbone.text_width))

    def embed(self, ids):  # [N, L] -> [N, L, E]
        d = torch.cat([self.delta, self.delta.new_zeros(1, self.delta.shape[1])])
        return self.backbone.model.token_embedding(ids) + d[self.slot[ids]]

    def encode(self, ids):  # [N, L] -> [N, D]
        eot = self.backbone.eot_index(ids)
        L = int(eot.max()) + 1  # causal: the positions after the end token change nothing
        return self.backbone.encode_text_embeddings(self.embed(ids[:, :L]), eot)

    def merged_rows(self) -> torch.Tensor:  # [V, E]: the final values of the vocabulary's rows
        return (self.backbone.model.token_embedding.weight[self.rows] + self.delta).detach()


def text_params(model):
    "The text tower's trainable tensors (not the token-embedding table: its rows learn through `WordTower.delta`)."
    return {k: p for k, p in model.named_parameters() if not k.startswith('visual.') and k not in ('token_embedding.weight', 'logit_scale')}


def multi_positive_loss(a, b, pos, scale):
    "Symmetric CLIP loss with several positives: a [N, D], b [M, D] normalised; pos bool [N, M]; targets uniform over positives."
    logits = scale * a @ b.T  # [N, M]
    ta, tb = pos.float() / pos.sum(1, keepdim=True), pos.T.float() / pos.T.sum(1, keepdim=True)
    return 0.5 * (-(ta * logits.log_softmax(1)).sum(1).mean() - (tb * logits.T.log_softmax(1)).sum(1).mean())


# ------------------------------------------------------------------------------------------------------------ training
def index_pools(pools) -> dict:
    "Where the items are: the frame items by class, the appearance clips' (clip, part, range)."
    by_class = {}
    for P in pools:
        for n, ks in enumerate(P['keys']):
            for j, key in enumerate(ks):
                if key is not None: by_class.setdefault(key[1], []).append((P, n, j, key))
    return dict(by_class=by_class, classes=sorted(by_class),
                mixes=[(n, p, r) for n, m in enumerate(pools[0]['mix']) if m for p, r in m.items() if r])


def sample_batch(pools, index, rng, n_frames, n_mix, n_time):
    "Items [(frames uint8 [k, S, S, 3], image key, [(caption, key)])]: class-balanced frames, mix clips, time clips."
    app, tim = pools
    items, by_class, cls, mixes = [], index['by_class'], index['classes'], index['mixes']
    for c in rng.choice(len(cls), n_frames):
        P, n, j, key = by_class[cls[c]][rng.integers(len(by_class[cls[c]]))]
        items.append((P['frames'][n, j:j + 1], key, frame_captions(key[1], key[2])))
    for i in rng.choice(len(mixes), n_mix):
        n, p, (a, b) = mixes[i]
        j = np.sort(rng.choice(np.arange(a, b), min(4, b - a), replace=False))
        c = app['classes'][app['label'][n]]
        items.append((app['frames'][n, j], ('m', c), mix_captions(c, p)))
    for n in rng.choice(len(tim['label']), n_time):
        j = np.arange(4) * (KEPT // 4) + rng.integers(0, KEPT // 4, 4)  # one kept frame per quarter (beat)
        items.append((tim['frames'][n, j], ('t',), time_captions(tim['classes'][tim['label'][n]])))
    return items


def train(backbone, pools, steps, n_frames, n_mix, n_time, n_thes, lr, wd, seed, visual_lr_scale=1.0, log_every=50):
    "Train both towers; returns the `WordTower` (its delta) and the logit scale."
    from a3lign_nb.data.video import clip_transform_for
    tf = clip_transform_for(backbone, train=True)
    time_classes = pools[1]['classes']
    texts = training_texts(time_classes)
    rows = torch.unique(backbone.tokenize(texts))
    rows = rows[rows != 0]  # 0 is the padding after the end token: never read
    tower = WordTower(backbone, rows)
    m = backbone.model
    for p in m.visual.parameters(): p.requires_grad_(True)
    tp = text_params(m)
    for p in tp.values(): p.requires_grad_(True)
    m.visual.train()
    log_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
    decay = [p for p in m.visual.parameters() if p.ndim >= 2] + [p for k, p in tp.items() if p.ndim >= 2 and k != 'positional_embedding']
    ids_decay = {id(p) for p in decay}
    rest = [p for p in list(m.visual.parameters()) + list(tp.values()) if id(p) not in ids_decay]
    vis = {id(p) for p in m.visual.parameters()}
    groups = [dict(params=[p for p in ps if (id(p) in vis) == v], weight_decay=d, lr=lr * (visual_lr_scale if v else 1))
              for ps, d in ((decay, wd), (rest, 0.0)) for v in (True, False)] + [dict(params=[tower.delta, log_scale], weight_decay=0.0, lr=lr)]
    opt = torch.optim.AdamW(groups, lr=lr)
    warm = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, steps - warm))))
    rng = np.random.default_rng([seed, 7])
    thes, index = thesaurus_pairs(), index_pools(pools)
    cache = {}
    def ids_of(ts):  # tokenised once per sentence
        for t in ts:
            if t not in cache: cache[t] = backbone.tokenize([t])[0]
        return torch.stack([cache[t] for t in ts])
    t0, run = time.time(), np.zeros(3)
    for step in range(1, steps + 1):
        items = sample_batch(pools, index, rng, n_frames, n_mix, n_time)
        x = torch.cat([tf(fr, rng) for fr, _, _ in items])  # [F, 3, S, S]: a clip's frames share their augmentation
        sizes = [len(fr) for fr, _, _ in items]
        f = F.normalize(m.visual(x), dim=-1)  # [F, D]
        f = F.normalize(torch.stack([g.mean(0) for g in f.split(sizes)]), dim=-1)  # [B, D]: a clip item's frame mean
        caps = [it[2][rng.integers(len(it[2]))] for it in items]
        texts_u = sorted({t for t, _ in caps})
        key_u = dict(caps)
        t_feat = F.normalize(tower.encode(ids_of(texts_u)), dim=-1)  # [U, D]
        pos = torch.tensor([[compatible(it[1], key_u[t]) for t in texts_u] for it in items])  # [B, U]
        scale = log_scale.clamp(max=math.log(100)).exp()
        loss_c = multi_positive_loss(f, t_feat, pos, scale)
        pairs = [thes[i] for i in rng.choice(len(thes), n_thes, replace=False)]
        a = F.normalize(tower.encode(ids_of([p[0] for p in pairs])), dim=-1)
        b = F.normalize(tower.encode(ids_of([p[1] for p in pairs])), dim=-1)
        same = torch.tensor([[p[2] == q[2] for q in pairs] for p in pairs])
        loss_t = multi_positive_loss(a, b, same, scale)
        loss = loss_c + loss_t
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step(); sched.step()
        run += [loss_c.item(), loss_t.item(), 1]
        if step % log_every == 0 or step == steps:
            print(f'  step {step:5d}/{steps}  image-text loss {run[0] / run[2]:.3f}  thesaurus loss {run[1] / run[2]:.3f}  '
                  f'logit scale {scale.item():.1f}  {time.time() - t0:.0f}s', flush=True)
            run[:] = 0
    backbone.lock()
    return tower, float(log_scale.detach().clamp(max=math.log(100)).exp())


def merge(backbone, tower, logit_scale):
    "Write the learned rows and the logit scale into the model; returns the sparse rows (ids [V], values [V, E])."
    rows, values = tower.rows, tower.merged_rows()
    with torch.no_grad():
        backbone.model.token_embedding.weight[rows] = values
        backbone.model.logit_scale.fill_(math.log(logit_scale))
    return rows, values


def checkpoint_tensors(backbone, rows, values) -> dict:
    "What the file holds: `visual.*`, the text tower (but the token table), `logit_scale`, and the vocabulary's rows, sparse."
    sd = {k: v for k, v in backbone.model.state_dict().items() if k != 'token_embedding.weight'}
    return {**sd, 'token_embedding.rows': rows.long(), 'token_embedding.values': values}


# ---------------------------------------------------------------------------------------------------------- evaluation
@torch.no_grad()
def pool_features(backbones: dict, pool) -> dict:
    "Test-time features of a rendered pool's frames: {name: [N, K, D]}."
    from a3lign_nb.data.video import clip_transform_for
    tf = clip_transform_for(next(iter(backbones.values())), train=False)
    x = torch.cat([tf(fr, None) for fr in pool['frames']])  # [N*K, 3, S, S]
    N, K = pool['frames'].shape[:2]
    return {k: b.encode_images(x, chunk=256).view(N, K, -1) for k, b in backbones.items()}


@torch.no_grad()
def class_text(backbone, prompts_per_class) -> torch.Tensor:
    "Normalised mean of each class's normalised prompt features -> [C, D]."
    return torch.stack([F.normalize(F.normalize(backbone.encode_text(backbone.tokenize(ps)), dim=-1).mean(0), dim=-1)
                        for ps in prompts_per_class])


def zero_shot(feats, labels, txt) -> float:
    "Accuracy of argmax cosine between clip frame-mean features [N, T, D] and class features [C, D]."
    return float((F.normalize(feats.mean(1), dim=-1) @ txt.T).argmax(1).eq(torch.as_tensor(labels)).float().mean())


def prompt_sets(classes, held_out: bool) -> list[list[str]]:
    "Per class: held-out templates x held-out synonyms, or training adjective templates x training adjectives."
    temps = HELD_OUT_TEMPLATES if held_out else ADJ_TEMPLATES
    return [[fill(t, w) for t in temps for w in ADJECTIVES[c][1 if held_out else 0]] for c in classes]


def zero_shot_figures(bb, feats: dict, labels: dict, classes) -> dict:
    "(a), (b) for one CLIP on each set of clips."
    out = {}
    for held, tag in ((True, 'heldout'), (False, 'train_words')):
        txt = class_text(bb, prompt_sets(classes, held))
        for where, f in feats.items(): out[f'zero_shot_{tag}_{where}'] = zero_shot(f, labels[where], txt)
    singles = [[fill(t, ADJECTIVES[c][1][i]) for c in classes] for t in HELD_OUT_TEMPLATES for i in range(2)]
    for where, f in feats.items():  # one prompt per class, every held-out (template, synonym) in turn
        out[f'zero_shot_heldout_single_{where}'] = float(np.mean([zero_shot(f, labels[where], class_text(bb, [[p] for p in s])) for s in singles]))
    return out


def retrieval(bb, feats, pool) -> dict:
    "(d) on single fresh frames whose strength is slight or strong (or neutral): 13 captions, one per (class, intensity); recall@1 averaged over the captions."
    caps, keys = ['a neutral face.'], [('f', 'neutral', None)]
    for c in pool['classes']:
        if c == 'neutral': continue
        for b, v in (('slight', 'slightly'), ('strong', 'strongly')):
            caps.append(fill('a {} {} face.', v, ADJECTIVES[c][0][0])); keys.append(('f', c, b))
    img, ik = [], []
    for n, ks in enumerate(pool['keys']):
        for j, k in enumerate(ks):
            if k is not None and k in keys: img.append(feats[n, j]); ik.append(keys.index(k))
    img, ik = F.normalize(torch.stack(img), dim=-1), torch.tensor(ik)
    with torch.no_grad(): txt = F.normalize(bb.encode_text(bb.tokenize(caps)), dim=-1)
    s = img @ txt.T  # [I, 13]
    top5 = s.T.topk(5, dim=1).indices  # [13, 5]
    hit = s.argmax(1).eq(ik).float()
    return dict(image_to_caption_r1=float(torch.stack([hit[ik == q].mean() for q in range(len(caps)) if (ik == q).any()]).mean()),  # balanced over captions
                text_to_image_p5=float(torch.stack([ik[top5[q]].eq(q).float().mean() for q in range(len(caps))]).mean()),
                retrieval_chance_r1=1 / len(caps), retrieval_frames=len(ik))


def time_figures(bb, feats: dict, labels: dict, classes) -> dict:
    "(e) name above its reversal's; 6-way zero-shot on frame means; and quarters against happy/sad (order read from the frames)."
    from a3lign_nb.data.synth import TIME_BEATS, TIME_PATTERNS
    with torch.no_grad():
        names = F.normalize(bb.encode_text(bb.tokenize([c.replace('_', ' ') for c in classes])), dim=-1)  # [6, D]
    beat = class_text(bb, [[fill(t, w) for t in ADJ_TEMPLATES for w in ADJECTIVES[TIME_BEATS[b]][0]] for b in 'HS'])  # [2, D]
    pat = torch.tensor([[0 if ch == 'H' else 1 for ch in TIME_PATTERNS[c]] for c in classes])  # [6, 4]
    rev = {**REVERSED, **{v: k for k, v in REVERSED.items()}}
    out = {}
    for where, f in feats.items():
        y = torch.as_tensor(labels[where])
        s = F.normalize(f.mean(1), dim=-1) @ names.T  # [N, 6]
        r = torch.tensor([classes.index(rev[classes[int(c)]]) for c in y])
        out[f'time_name_above_reversed_{where}'] = float((s.gather(1, y[:, None]) > s.gather(1, r[:, None])).float().mean())
        out[f'time_zero_shot_{where}'] = float(s.argmax(1).eq(y).float().mean())
        q = F.normalize(torch.stack([g.mean(1) for g in f.tensor_split(4, dim=1)], 1), dim=-1) @ beat.T  # [N, 4, 2]
        score = torch.stack([q[:, range(4), pat[c]].sum(1) for c in range(len(classes))], 1)  # [N, 6]
        out[f'time_quarters_zero_shot_{where}'] = float(score.argmax(1).eq(y).float().mean())
    return out


@torch.no_grad()
def mat_init_features(bb, classes, sentences: int = 4, tokens: int = 64) -> torch.Tensor:
    "Class features [C, D] of MAT's start (`init='class_name'`, random fill): the class name, then random tokens, 66 positions."
    from a3lign_nb.models.mat import init_mat_tokens, init_texts_for, text_token_embeddings
    C, S, K = len(classes), sentences, tokens
    tok = init_mat_tokens(C, S, K, bb.text_width, text_token_embeddings(bb, init_texts_for(classes)),
                          generator=torch.Generator().manual_seed(0))  # [C, S, K, E]
    ends = bb.embed_tokens(torch.tensor([[bb.sot_id, bb.eot_id]]))[0]  # [2, E]
    seq = torch.cat([ends[:1].expand(C * S, 1, -1), tok.view(C * S, K, -1), ends[1:].expand(C * S, 1, -1)], 1)  # [C*S, K+2, E]
    f = F.normalize(bb.encode_text_embeddings(seq, torch.full((C * S,), K + 1)), dim=-1).view(C, S, -1)
    return F.normalize(f.mean(1), dim=-1)


def evaluate(new, old, seed: int, per_class_app: int, per_class_time: int) -> dict:
    "Figures (a)-(f), for the new CLIP and, where it means something, the old `synthetic` one."
    app = render_pool(per_class_app, seed, 2, 'appearance', frames=(12, 32))
    tim = render_pool(per_class_time, seed, 3, 'time', frames=(16, 32))
    both = dict(new=new, old=old)
    fa, ft = pool_features(both, app), pool_features(both, tim)
    sh_tr, y_tr = shipped_features(both, SHIPPED/'train.txt')
    sh_te, y_te = shipped_features(both, SHIPPED/'test.txt')
    sht_te, yt_te = shipped_features(both, SHIPPED_TIME/'test.txt', spec='synthetic-time')
    classes, tclasses = app['classes'], tim['classes']
    figs = dict(chance=1 / len(classes), time_chance=1 / len(tclasses), fresh_clips=len(app['label']), fresh_time_clips=len(tim['label']))
    for name, bb in both.items():
        sfx = '' if name == 'new' else '_old'
        z = zero_shot_figures(bb, dict(fresh=fa[name], shipped=sh_te[name]), dict(fresh=app['label'], shipped=y_te), classes)
        z |= {'zero_shot_7_prompts_shipped': zero_shot(sh_te[name], y_te, class_text(bb, [[p] for p in prompts(classes)]))}  # the old script's figure (a)
        z |= {'zero_shot_mat_init_shipped': zero_shot(sh_te[name], y_te, mat_init_features(bb, classes))}  # (g)
        z |= retrieval(bb, fa[name], app)
        z |= time_figures(bb, dict(fresh=ft[name], shipped=sht_te[name]), dict(fresh=tim['label'], shipped=yt_te), tclasses)
        mid = sh_tr[name].shape[1] // 2
        z |= dict(probe_test=linear_probe(sh_tr[name].mean(1), y_tr, sh_te[name].mean(1), y_te),
                  probe_test_middle_frame=linear_probe(sh_tr[name][:, mid], y_tr, sh_te[name][:, mid], y_te))
        figs |= {k + sfx: v for k, v in z.items() if not (sfx and k in ('retrieval_chance_r1', 'retrieval_frames'))}
    return figs


def seeded_clip_old():
    "The old `synthetic` weights (random text tower), for comparison."
    from a3lign_nb.backbone import load_backbone
    return load_backbone(BASE, 'synthetic')


REPORT = [  # (label, key) printed after a build
    ('(a) zero-shot, held-out templates x held-out synonyms, fresh clips', 'zero_shot_heldout_fresh'),
    ('(a) ... shipped test clips', 'zero_shot_heldout_shipped'),
    ('(a) ... one prompt per class, mean over prompts, shipped', 'zero_shot_heldout_single_shipped'),
    ('(b) zero-shot, training templates x training words, fresh', 'zero_shot_train_words_fresh'),
    ('(b) ... shipped test clips', 'zero_shot_train_words_shipped'),
    ('    the old 7 prompts, shipped test clips', 'zero_shot_7_prompts_shipped'),
    ('(d) image -> caption recall@1 (13 intensity captions)', 'image_to_caption_r1'),
    ('(d) text -> image precision@5', 'text_to_image_p5'),
    ('(e) time name above its reversal, fresh / shipped', 'time_name_above_reversed_fresh'),
    ('(e) ... shipped time test clips', 'time_name_above_reversed_shipped'),
    ('(e) 6-way zero-shot on frame means, shipped time test', 'time_zero_shot_shipped'),
    ('(e) quarters vs happy/sad words, shipped time test', 'time_quarters_zero_shot_shipped'),
    ('(f) linear probe, mean over time', 'probe_test'),
    ('(f) linear probe, middle frame', 'probe_test_middle_frame'),
    ("(g) zero-shot of MAT's class-name start (64 tokens), shipped test", 'zero_shot_mat_init_shipped')]


def main(argv=None):
    ap = common_args(argparse.ArgumentParser(description=__doc__.split('\n')[0]), 2000, 400,
                     'generator seed of the clips (shipped sets: 0; make_tiny_clip.py: 1000)')
    for flag, default, what in (  # the type is the default's
            ('--out', CLIP_DIR/f'{BASE}-{TAG}.safetensors', 'where to write'),
            ('--clips-per-class', 160, 'fresh appearance clips per class (12-16 frames, 8 kept)'),
            ('--time-clips-per-class', 40, 'fresh time-set clips per class (16-24 frames, 8 kept)'),
            ('--frames', 64, 'single-frame items per step (class-balanced)'),
            ('--mix', 10, 'appearance clip items per step ("a face that turns angry.")'),
            ('--time', 6, 'time-set clip items per step ("happy then sad")'),
            ('--thesaurus', 32, 'text-only synonym pairs per step'),
            ('--visual-lr-scale', 0.5, 'the image tower learns at lr x this'),
            ('--eval-clips', 30, 'fresh held-out clips per class for the figures (time set: 20)')):
        ap.add_argument(flag, type=Path if isinstance(default, Path) else type(default), default=default, help=what)
    ap.add_argument('--init-visual', choices=('synthetic', 'random'), default='synthetic',
                    help="start the image tower from the `synthetic` weights' (make_tiny_clip.py) or from the seeded random one")
    a = parse(ap, argv)
    from a3lign_nb.data.synth import GENERATOR_VERSION
    t0 = time.time()
    pools = (render_pool(a.clips_per_class, a.seed, 0, 'appearance'), render_pool(a.time_clips_per_class, a.seed, 1, 'time', frames=(16, 24)))
    print(f'rendered {sum(len(p["label"]) for p in pools)} clips (seed {a.seed}) in {time.time() - t0:.0f}s', flush=True)
    backbone = seeded_clip(BASE)
    if a.init_visual == 'synthetic':  # warm start: the image tower of the `synthetic` weights (make_tiny_clip.py)
        backbone.model.visual.load_state_dict(seeded_clip_old().model.visual.state_dict())
    table0 = backbone.model.token_embedding.weight.detach().clone()
    t1 = time.time()
    tower, scale = train(backbone, pools, a.steps, a.frames, a.mix, a.time, a.thesaurus, a.lr, a.wd, a.seed, a.visual_lr_scale)
    train_s = time.time() - t1
    rows, values = merge(backbone, tower, scale)
    others = torch.ones(len(table0), dtype=torch.bool); others[rows] = False
    if not torch.equal(backbone.model.token_embedding.weight[others], table0[others]): raise RuntimeError('rows outside the vocabulary changed')
    t2 = time.time()
    figs = evaluate(backbone, seeded_clip_old(), a.seed, a.eval_clips, 20)
    eval_s = time.time() - t2
    tclasses = pools[1]['classes']
    texts = training_texts(tclasses)
    cmd = (f'python data_samples/make_tiny_clip_words.py --seed {a.seed} --clips-per-class {a.clips_per_class} --time-clips-per-class '
           f'{a.time_clips_per_class} --steps {a.steps} --frames {a.frames} --mix {a.mix} --time {a.time} --thesaurus {a.thesaurus} '
           f'--lr {a.lr} --init-visual {a.init_visual} --visual-lr-scale {a.visual_lr_scale} --wd {a.wd} --eval-clips {a.eval_clips}')
    meta = dict(base_config=BASE, text_seed=TEXT_SEED, init_seed=TEXT_SEED, a3lign_base_seed=TEXT_SEED, generator='a3lign_nb.data.synth',
                generator_version=GENERATOR_VERSION, generator_seed=a.seed, init_visual=a.init_visual, steps=a.steps, lr=a.lr, weight_decay=a.wd,
                logit_scale=round(scale, 2), vocabulary=json.dumps(words_of(texts)), vocabulary_rows=len(rows),
                vocabulary_split=json.dumps(vocabulary_split(tclasses)), training_sentences=len(texts),
                script='data_samples/make_tiny_clip_words.py', command=cmd,
                figures=json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in figs.items()}),
                seconds=json.dumps(dict(render=round(t1 - t0), train=round(train_s), evaluate=round(eval_s), total=round(time.time() - t0))))
    save_tensors(checkpoint_tensors(backbone, rows, values), a.out, meta, max_fp32_bytes=4_000_000)
    print(f'wrote {a.out} ({a.out.stat().st_size / 1024:.0f} KiB); {len(rows)} vocabulary rows; training {train_s:.0f}s, '
          f'evaluation {eval_s:.0f}s, total {time.time() - t0:.0f}s')
    print(f'{"figure":66s} {"words":>7s} {"old":>7s}')
    for label, k in REPORT:
        print(f'{label:66s} {figs[k]:7.3f} {figs.get(k + "_old", float("nan")):7.3f}')
    print(f'chance: 7 classes {figs["chance"]:.3f}, 13 captions {figs["retrieval_chance_r1"]:.3f}, 6 time classes {figs["time_chance"]:.3f}, reversal 0.5')
    return figs


if __name__ == '__main__':
    main()
