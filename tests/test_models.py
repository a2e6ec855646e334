"""The method: MAT, JAS, the A3lign-DFER model and the BAP stages (shapes, parameter counts, which
parameters train in which stage, order sensitivity, and a real learning run on a tiny model).

ViT-L/14-sized tests build a random-weight CLIP of ~1.7 GB and run its text tower over 112 sentences:
they run only with A3LIGN_SLOW=1 (about half a minute on a 2-core CPU)."""
import math
import os

import pytest
import torch
from safetensors.torch import load_file, save_file

from a3lign_nb.backbone import FrozenCLIP, load_backbone
from a3lign_nb.models.a3lign import A3lignConfig, A3lignDFER, shuffle_frames
from a3lign_nb.models.mat import MAT, mat_num_params
from a3lign_nb.testing import synthetic_feature_task, tiny_backbone
from a3lign_nb.train import bap

slow = pytest.mark.skipif(os.environ.get('A3LIGN_SLOW') != '1', reason='slow (ViT-L/14 on CPU): set A3LIGN_SLOW=1')
DFEW_C = 7


def _jas_params(D, mlp=2.0, S=16, T=16):
    "Closed-form JAS size with the default options (shared time table, per-side time offsets, cls pooling, residual gate)."
    H = round(D * mlp)
    enc = (D  # class token
           + 2 * D + 4 * D * D + 4 * D + 2 * D  # ln_1, attention (in + out proj), ln_2
           + D * H + H + H * D + D  # MLP
           + 2 * D + D * D + D + 1)  # ln_post, proj, gate
    return max(S, T) * D + 2 * enc + (T + S) * D  # the last term: each side's own time offset


def _counts(model):
    return {k: sum(p.numel() for _, p in v) for k, v in model.parameter_groups().items()}


# ------------------------------------------------------------------ shapes and parameter counts
def test_tiny_shapes_and_counts():
    backbone = tiny_backbone()
    for S, Ttok in [(4, 8), (16, 64)]:  # the tiny config, and the paper's S and T on the tiny CLIP
        m = A3lignDFER(A3lignConfig.tiny(num_sentences=S, tokens_per_sentence=Ttok), backbone)
        feats = torch.randn(3, 16, backbone.embed_dim)
        assert m.mat.shape == (DFEW_C, S, Ttok, backbone.text_width)
        assert m.sentence_features().shape == (DFEW_C, S, backbone.embed_dim)
        assert m.class_features().shape == (DFEW_C, backbone.embed_dim)
        assert m(feats).shape == (3, DFEW_C)
        assert m.frame_sentence_similarity(feats).shape == (3, DFEW_C, 16, S)
        c = _counts(m)
        assert c['mat'] == mat_num_params(DFEW_C, S, Ttok, backbone.text_width)
        assert c['image_encoder'] + c['text_encoder'] == _jas_params(backbone.embed_dim, S=S)
        assert sum(p.requires_grad for p in m.backbone.parameters()) == 0


def _paper_size(name: str, width: int, mat: int, jas: int) -> FrozenCLIP:
    "Build `name` (random weights) with the paper's MAT (7 x 16 x 64 x W) and check widths and parameter counts."
    torch.manual_seed(0)
    backbone = load_backbone(name, None)
    assert (backbone.embed_dim, backbone.text_width) == (width, width)
    c = _counts(A3lignDFER(A3lignConfig(backbone=name), backbone))
    assert c['mat'] == 7 * 16 * 64 * width == mat
    assert c['image_encoder'] + c['text_encoder'] == _jas_params(width) == jas
    return backbone


def test_vit_b16_paper_settings():
    "ViT-B/16 size (random weights, no download): MAT 7x16x64x512 = 3,670,016, JAS 4,758,530; shapes through the real text tower."
    backbone = _paper_size('ViT-B-16-quickgelu', 512, 3_670_016, 4_758_530)
    # shapes at S=16, T=64 through the real text tower; 2 classes keep it to 32 sentences (all 7: the slow test)
    m2 = A3lignDFER(A3lignConfig(backbone='ViT-B-16-quickgelu', classes=('a', 'b')), backbone)
    with torch.no_grad():
        assert m2.sentence_features().shape == (2, 16, 512)
        assert m2(torch.randn(2, 16, 512)).shape == (2, 2)


@slow
def test_vit_b16_paper_settings_all_classes():
    backbone = load_backbone('ViT-B-16-quickgelu', None)
    m = A3lignDFER(A3lignConfig(backbone='ViT-B-16-quickgelu'), backbone)
    with torch.no_grad():
        assert m.sentence_features().shape == (7, 16, 512)
        assert m(torch.randn(2, 16, 512)).shape == (2, 7)


@slow
def test_vit_l14_paper_settings():
    backbone = _paper_size('ViT-L-14-quickgelu', 768, 5_505_024, 10_676_738)
    m = A3lignDFER(A3lignConfig(backbone='ViT-L-14-quickgelu'), backbone)
    with torch.no_grad():
        assert m.sentence_features().shape == (7, 16, 768)
        assert m(torch.randn(2, 16, 768)).shape == (2, 7)


# ------------------------------------------------------------------ MAT
def test_mat_is_the_text_tower_and_chunking_is_exact():
    backbone = tiny_backbone()
    m = MAT(backbone, 3, num_sentences=5, tokens_per_sentence=6, seed=0)
    ref = m(backbone)
    m.chunk_size = 4
    torch.testing.assert_close(m(backbone), ref, rtol=1e-5, atol=1e-5)
    # a sentence built by hand goes through the same tower
    emb = m.sentence_embeddings()[1, 2][None]  # [1, T+2, W]
    torch.testing.assert_close(backbone.encode_text_embeddings(emb, torch.tensor([7]))[0], ref[1, 2], rtol=1e-5, atol=1e-5)


def test_mat_text_init_and_errors():
    backbone = tiny_backbone()
    m = MAT(backbone, 2, num_sentences=3, tokens_per_sentence=5, init='class_name', init_texts=['happiness', 'fear'], init_fill='tile')
    e = backbone.embed_tokens(backbone.tokenize(['happiness']))[0, 1]
    torch.testing.assert_close(m.tokens[0, 2, 4], e.float())
    with pytest.raises(ValueError, match='needs init_texts'): MAT(backbone, 2, init='description')
    with pytest.raises(ValueError, match='context length'): MAT(backbone, 2, tokens_per_sentence=80)


# ------------------------------------------------------------------ BAP: exactly the intended parameters train
CONFIGS = {
    'default': {},
    'learned scale': dict(learn_logit_scale=True),
    'shared encoders': dict(jas_share_encoders=True),
    'mean pooling, separate time tables': dict(jas_pooling='mean', jas_share_time_embedding=False),
    'no MAT': dict(use_mat=False),
}


@pytest.mark.parametrize('name', list(CONFIGS))
def test_each_stage_trains_exactly_its_parameters(name):
    backbone = tiny_backbone()
    backbone_before = {k: v.clone() for k, v in backbone.state_dict().items()}
    X, Y = synthetic_feature_task(n=16, num_classes=7, T=16, D=backbone.embed_dim, seed=0)
    m = A3lignDFER(A3lignConfig.tiny(**CONFIGS[name]), backbone)
    groups = m.parameter_groups()
    for stage in bap.BAPSchedule().stages:
        rep = bap.stage_step_report(m, stage, X, Y)
        for g, r in rep.items():
            want = r['n'] if r['trainable'] else 0
            if g == 'backbone': want = 0
            shared_into = name == 'shared encoders' and g in ('text_encoder', 'image_encoder') and any(
                x in stage.groups for x in ('text_encoder', 'image_encoder'))
            if shared_into: want = r['n']  # one encoder in both roles trains whenever either role does
            assert (stage.name, g, r['with_grad'], r['changed']) == (stage.name, g, want, want)
        trainable = {n for n, p in m.named_parameters() if p.requires_grad}
        expected = {n for g in stage.groups for n, _ in groups[g]}
        if name != 'shared encoders': assert trainable == expected
    for k, v in backbone.state_dict().items(): assert torch.equal(v, backbone_before[k]), k


def test_shared_time_table_is_text_side():
    m = A3lignDFER(A3lignConfig.tiny(), tiny_backbone())
    g = m.parameter_groups()
    assert 'jas.time_embed' in dict(g['text_encoder']) and 'jas.time_embed' not in dict(g['image_encoder'])
    bap.apply_stage(m, bap.BAPSchedule().stages[1])  # image stage
    assert not m.jas.time_embed.requires_grad and m.jas.image_encoder.cls_token.requires_grad


def test_no_jas_has_no_image_stage():
    m = A3lignDFER(A3lignConfig.tiny(use_jas=False), tiny_backbone())
    with pytest.raises(ValueError, match="stage 'image' has nothing to train"):
        bap.check_schedule(m, bap.BAPSchedule(1, 1, 1))
    bap.check_schedule(m, bap.BAPSchedule(1, 0, 1))
    bap.check_schedule(m, bap.BAPSchedule.joint_only(3))


def test_make_optimizer_requires_apply_stage_and_groups():
    m = A3lignDFER(A3lignConfig.tiny(), tiny_backbone())
    joint = bap.BAPSchedule().stages[2]
    bap.apply_stage(m, bap.BAPSchedule().stages[1])
    with pytest.raises(RuntimeError, match='apply_stage'): bap.make_optimizer(m, joint)
    bap.apply_stage(m, joint)
    opt = bap.make_optimizer(m, joint)
    assert isinstance(opt, torch.optim.SGD)
    names = [g['name'] for g in opt.param_groups]  # one group per role, decayed and not
    assert names == ['mat', 'text_encoder', 'text_encoder.no_decay', 'image_encoder', 'image_encoder.no_decay']
    oc = bap.OptimConfig()
    wd = {g['name']: g['weight_decay'] for g in opt.param_groups}
    assert wd['image_encoder.no_decay'] == 0.0 and wd['image_encoder'] == oc.weight_decay
    lr = {g['name']: g['lr'] for g in opt.param_groups}
    assert lr['mat'] == oc.lr * oc.mat_lr_mult and lr['image_encoder'] == oc.lr
    n_opt = sum(p.numel() for g in opt.param_groups for p in g['params'])
    assert n_opt == sum(p.numel() for p in m.parameters() if p.requires_grad)


def test_scheduler_warmup_cosine():
    m, oc = A3lignDFER(A3lignConfig.tiny(), tiny_backbone()), bap.OptimConfig(warmup_epochs=1, min_lr_ratio=0.1)
    st = bap.BAPSchedule(2, 0, 0).stages[0]
    bap.apply_stage(m, st)
    opt = bap.make_optimizer(m, st, oc)
    sch = bap.make_scheduler(opt, st, 5, oc)
    lrs = []
    for _ in range(10):
        lrs.append(opt.param_groups[1]['lr']); opt.step(); sch.step()
    lr = oc.lr
    assert math.isclose(lrs[0], lr / 5) and math.isclose(lrs[4], lr)  # linear warm-up over 5 steps
    assert all(a >= b for a, b in zip(lrs[4:], lrs[5:])) and lrs[-1] >= 0.1 * lr - 1e-12


# ------------------------------------------------------------------ time
def test_stage1_averaging_is_order_blind_and_jas_is_not():
    backbone = tiny_backbone()
    m = A3lignDFER(A3lignConfig.tiny(), backbone).eval()
    X, _ = synthetic_feature_task(n=8, num_classes=7, T=16, D=backbone.embed_dim, seed=3)
    Xs = shuffle_frames(X, torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(m(Xs, temporal=False), m(X, temporal=False), rtol=1e-4, atol=1e-4)
        assert (m(Xs) - m(X)).abs().max() > 1e-3
    nojas = A3lignDFER(A3lignConfig.tiny(use_jas=False), backbone)
    with torch.no_grad(): torch.testing.assert_close(nojas(Xs), nojas(X), rtol=1e-4, atol=1e-4)


def test_learning_through_bap():
    "A tiny model trained ~130 SGD steps (the defaults) through the stages on an order-only task: stage 2 does the work."
    backbone = tiny_backbone()
    X, Y = synthetic_feature_task(n=768, num_classes=7, T=16, D=backbone.embed_dim, mean_signal=0.0, seed=0)
    X, Y, Xt, Yt = X[:512], Y[:512], X[512:], Y[512:]
    m = A3lignDFER(A3lignConfig.tiny(), backbone)
    assert bap.OptimConfig().optimizer == 'sgd'
    with torch.no_grad(): acc0 = (m(Xt).argmax(1) == Yt).float().mean().item()
    log = bap.train_bap(m, X, Y, bap.BAPSchedule(4, 8, 4), batch_size=64, eval_feats=Xt, eval_labels=Yt)
    by = {s: [r for r in log if r['stage'] == s] for s in ('text', 'image', 'joint')}
    assert log[-1]['loss'] < 0.1 * log[0]['loss']
    assert log[-1]['eval_acc'] > 0.85 > acc0 + 0.5
    assert by['text'][-1]['eval_acc'] < 0.3  # the mean over time carries nothing here ...
    assert by['image'][-1]['eval_acc'] > by['text'][-1]['eval_acc'] + 0.5  # ... the image dynamic encoder does


def test_learning_uses_frame_order():
    "On an order-only task (same mean for every class) the trained image dynamic encoder uses the order."
    backbone = tiny_backbone()
    X, Y = synthetic_feature_task(n=768, num_classes=7, T=16, D=backbone.embed_dim, mean_signal=0.0, seed=0)
    X, Y, Xt, Yt = X[:512], Y[:512], X[512:], Y[512:]
    # MAT held still (lr x 0): on the random tiny CLIP, moving MAT at this rate destabilises the logits
    m = A3lignDFER(A3lignConfig.tiny(), backbone)
    log = bap.train_bap(m, X, Y, bap.BAPSchedule.joint_only(20), batch_size=64,
                        optim=bap.OptimConfig(optimizer='adamw', lr=3e-3, mat_lr_mult=0.0))
    m.eval()
    with torch.no_grad():
        acc = (m(Xt).argmax(1) == Yt).float().mean().item()
        avg = (m(Xt, temporal=False).argmax(1) == Yt).float().mean().item()
        shuf = (m(shuffle_frames(Xt, torch.Generator().manual_seed(0))).argmax(1) == Yt).float().mean().item()
    assert log[-1]['loss'] < 0.5 * log[1]['loss']
    assert acc > 0.75 and avg < 0.35 and shuf < 0.35, (acc, avg, shuf)


# ------------------------------------------------------------------ config and state
def test_config_roundtrip_and_errors(tmp_path):
    cfg = A3lignConfig.tiny(mat_init='description', mat_init_texts=[f'text {i}' for i in range(7)])
    assert A3lignConfig.load(cfg.save(tmp_path/'m.json')) == cfg
    assert A3lignConfig() == A3lignConfig.from_dict(A3lignConfig().to_dict())
    (tmp_path/'bad.json').write_text('{"num_sentences": 4, "colour": 1}')
    with pytest.raises(ValueError, match="bad.json.*colour"): A3lignConfig.load(tmp_path/'bad.json')
    with pytest.raises(ValueError, match='one text per class'): A3lignConfig.tiny(mat_init_texts=['a'])


@pytest.mark.parametrize('kw', [{}, dict(jas_share_encoders=True, learn_logit_scale=True), dict(use_mat=False)])
def test_trainable_state_roundtrips_through_safetensors(tmp_path, kw):
    backbone = tiny_backbone()
    a = A3lignDFER(A3lignConfig.tiny(**kw), backbone, seed=0)
    b = A3lignDFER(A3lignConfig.tiny(**kw), backbone, seed=1)
    sd = a.trainable_state_dict()
    assert sd and not any(k.startswith('backbone') for k in sd)
    save_file(sd, tmp_path/'s.safetensors')
    b.load_trainable_state_dict(load_file(tmp_path/'s.safetensors'))
    x = torch.randn(2, 16, backbone.embed_dim)
    with torch.no_grad(): torch.testing.assert_close(b(x), a(x))
    with pytest.raises(KeyError, match='missing'): b.load_trainable_state_dict({k: v for k, v in list(sd.items())[1:]})


def test_class_feature_cache_follows_parameter_changes():
    m = A3lignDFER(A3lignConfig.tiny(), tiny_backbone())
    bap.apply_stage(m, bap.BAPSchedule().stages[1])  # text side frozen
    c1 = m.class_features()
    assert m.class_features() is c1
    sd = m.trainable_state_dict(); sd['mat.tokens'] = sd['mat.tokens'] + 1
    m.load_trainable_state_dict(sd)
    c2 = m.class_features()
    assert c2 is not c1 and not torch.allclose(c1, c2)
    bap.apply_stage(m, bap.BAPSchedule().stages[0])
    assert m.class_features().requires_grad


def test_logits_stay_fp32_under_autocast():
    "100 * cos in bf16 would round by ~0.2: the logits are computed in fp32 even inside autocast."
    from a3lign_nb.models.jas import JAS
    j = JAS(64)
    v, c = torch.randn(4, 64), torch.randn(7, 64)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        got = j.logits(v, c)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, j.logits(v, c), rtol=0, atol=0)



def test_encoders_see_time_at_the_features_scale():
    "On real frame features (shipped tiny CLIP), permuting the frames moves the image encoder's output at init by a few %;"
    " the first build (raw features + a std-0.02 table, kept as LEGACY_DEFAULTS) moved it by ~1e-4: time was invisible."
    from a3lign_nb.train.cache import load_feature_set
    from a3lign_nb.models.a3lign import LEGACY_DEFAULTS, shuffle_frames
    fs = load_feature_set('synthetic')
    x = fs.test_feats  # [M, 16, D]
    xp = shuffle_frames(x, torch.Generator().manual_seed(0))
    def sensitivity(**kw):
        m = A3lignDFER(fs.model_config(**kw), fs.backbone)
        with torch.no_grad(): v, vp = m.video_features(x), m.video_features(xp)
        return ((v - vp).norm(dim=-1) / v.norm(dim=-1)).mean().item()
    new, old = sensitivity(), sensitivity(**LEGACY_DEFAULTS)
    assert new > 0.02 and old < 1e-3 and new > 100 * old, (new, old)
