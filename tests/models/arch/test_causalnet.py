"""CausalNet (memix.models.arch.causalnet): the released parameter count, agreement with an independent functional
transcription of the release's forward (tony19980810/CausalNet Models.py), shapes and input checks, the grid
masks, manifold mixing, gradients, batch-size-1 eval, release state-dict mapping and one training step per method."""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F

from memix import mixing, models
from memix.mixing.base import ManifoldPlan
from memix.models.arch import causalnet
from memix.models.arch.causalnet import CausalNet, state_dict_from_release
from memix.names import INPUT_SPACE_METHODS

torch.set_num_threads(1)

# Trainable parameters of the released model: tony19980810/CausalNet@7bdf163 Models.py CausalNet(image_size=28,
# patch_size=7, dim=256, heads=3, num_hierarchies=3, block_repeats=(3, 3, 9), num_classes=3, gamma=0.5) (main_train.py
# lines 257-267) instantiated with einops installed outside the repository, numel summed over requires_grad params.
RELEASED_TRAINABLE = 276_590_089

SMALL = dict(dim=16, heads=3, block_repeats=(1, 1, 2), head_hidden=32, gamma=0.3)  # heads 3: head width 5, 15 of 16
TINY = dict(dim=8, heads=1, block_repeats=(1, 1, 1), head_hidden=16, mlp_mult=2)
DIAGONAL = ((0, 3), (3, 0), (1, 2), (2, 1))  # token pairs more than 1 apart on the row-major 2 x 2 grid


def n_trainable(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters() if p.requires_grad)


def make(num_classes: int = 3, seed: int = 0, randomise: bool = False, **kw) -> CausalNet:
    torch.manual_seed(seed)
    model = CausalNet(num_classes, **kw)
    if randomise:  # norms, position vectors and biases away from their init so that they matter
        g = torch.Generator().manual_seed(seed + 100)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if p.ndim >= 2 and p.shape[1:].numel() > 1:
                    p.copy_(torch.randn(p.shape, generator=g) / p[0].numel() ** 0.5)
                elif "norm" in name and name.endswith("weight"):
                    p.copy_(1 + 0.3 * torch.randn(p.shape, generator=g))
                else:
                    p.copy_(0.3 * torch.randn(p.shape, generator=g))
    return model


def clips(b: int = 3, chans: int = 12, seed: int = 1) -> torch.Tensor:
    return torch.rand(b, chans, 28, 28, generator=torch.Generator().manual_seed(seed))


# --- an independent reference: the release's forward with torch.nn.functional, reading the state dict by name ---

def _cnorm(x, sd, p):
    mu = x.mean(1, keepdim=True)
    var = ((x - mu) ** 2).mean(1, keepdim=True)
    return (x - mu) / torch.sqrt(var + 1e-5) * sd[p + "weight"] + sd[p + "bias"]


def _map_block(x, sd, p, heads):
    """Pre-norm attention (qkv 1x1 conv without bias, head width C // heads) + 1x1 conv feed-forward."""
    n, c, h, w = x.shape
    y = F.conv2d(_cnorm(x, sd, p + "attn_norm."), sd[p + "attn.qkv.weight"])
    d = c // heads
    q, k, v = (t.reshape(n, heads, d, h * w) for t in y.split(heads * d, dim=1))
    a = torch.softmax(torch.einsum("bhdi,bhdj->bhij", q, k) * d**-0.5, dim=-1)
    o = torch.einsum("bhij,bhdj->bhdi", a, v).reshape(n, heads * d, h, w)
    x = x + F.conv2d(o, sd[p + "attn.proj.weight"], sd[p + "attn.proj.bias"])
    y = F.gelu(F.conv2d(_cnorm(x, sd, p + "ff_norm."), sd[p + "ff.fc1.weight"], sd[p + "ff.fc1.bias"]))
    return x + F.conv2d(y, sd[p + "ff.fc2.weight"], sd[p + "ff.fc2.bias"])


def _branch(img, sd, p, heads, levels, repeats, patch=7):
    n, c, s, _ = img.shape
    g = s // patch
    x = img.unfold(2, patch, patch).unfold(3, patch, patch)  # (n, c, g, g, p1, p2)
    x = x.permute(0, 4, 5, 1, 2, 3).reshape(n, patch * patch * c, g, g)  # channels (p1, p2, c)
    x = F.conv2d(x, sd[p + "embed.weight"], sd[p + "embed.bias"])
    for lvl in range(levels):
        lp = f"{p}levels.{lvl}."
        blocks = 2 ** (levels - 1 - lvl)
        side = x.shape[-1] // blocks
        out = torch.empty_like(x)
        for bi in range(blocks):
            for bj in range(blocks):
                sub = x[:, :, bi * side:(bi + 1) * side, bj * side:(bj + 1) * side]
                sub = sub + sd[lp + "pos"][: side * side].reshape(side, side)
                for r in range(repeats[lvl]):
                    sub = _map_block(sub, sd, f"{lp}blocks.{r}.", heads * 2**lvl)
                out[:, :, bi * side:(bi + 1) * side, bj * side:(bj + 1) * side] = sub
        x = out
        if lvl < levels - 1:
            x = F.conv2d(x, sd[lp + "merge.conv.weight"], sd[lp + "merge.conv.bias"], padding=1)
            x = F.max_pool2d(_cnorm(x, sd, lp + "merge.norm."), 3, 2, 1)
    d4 = x.shape[1]
    return x.reshape(n, d4 // 4, 4).permute(0, 2, 1)  # reshape (n, d/4, 2, 2), tokens row-major


def _lin(x, sd, p):
    return F.linear(x, sd[p + "weight"], sd[p + "bias"])


def _ln(x, sd, p):
    return F.layer_norm(x, x.shape[-1:], sd[p + "weight"], sd[p + "bias"], eps=1e-5)


def _grid_attn(x, ctx, sd, p, heads, scale, gamma):
    mask = torch.ones(4, 4)
    bias = torch.zeros(4, 4)
    for i, j in DIAGONAL:
        mask[i, j] = 0.0
        bias[i, j] = -(j + 1) * gamma
    b, n, c = x.shape
    d = c // heads
    q = _lin(x, sd, p + "q.").reshape(b, n, heads, d)
    kv = _lin(ctx, sd, p + "kv.")
    k, v = kv[..., :c].reshape(b, n, heads, d), kv[..., c:].reshape(b, n, heads, d)
    a = torch.einsum("bihd,bjhd->bhij", q, k) * scale
    a = torch.softmax(a * mask + bias, dim=-1) * mask
    return _lin(torch.einsum("bhij,bjhd->bihd", a, v).reshape(b, n, c), sd, p + "proj.")


def _ff(x, sd, p):
    return _lin(F.gelu(_lin(x, sd, p + "fc1.")), sd, p + "fc2.")


def _temporal(x1, x2, sd, p, heads):
    b, n, c = x2.shape
    d = c // heads
    q = _lin(x2, sd, p + "temporal_q.").reshape(b, n, heads, d)
    kv1, kv2 = _lin(x1, sd, p + "temporal_kv."), _lin(x2, sd, p + "temporal_kv.")
    ks = torch.stack([kv1[..., :c], kv2[..., :c]], 2).reshape(b, n, 2, heads, d)
    vs = torch.stack([kv1[..., c:], kv2[..., c:]], 2).reshape(b, n, 2, heads, d)
    a = torch.softmax(torch.einsum("bnhd,bnkhd->bnhk", q, ks) * d**-0.5, dim=-1)
    return _lin(torch.einsum("bnhk,bnkhd->bnhd", a, vs).reshape(b, n, c), sd, p + "temporal_proj.")


def _cab_pass(y1, y2, sd, heads, gamma):
    p = "stages.1."
    y1, y2 = _ln(y1, sd, p + "norm."), _ln(y2, sd, p + "norm.")
    scale = (y1.shape[-1] // heads) ** -0.5
    y1 = _grid_attn(y1, y1, sd, p + "attn.spatial.", heads, scale, gamma) + y1
    y2 = _grid_attn(y2, y2, sd, p + "attn.spatial.", heads, scale, gamma) + y2
    y2 = _temporal(y1, y2, sd, p + "attn.", heads) + y2
    return _ff(y1, sd, p + "ff.") + y1, _ff(y2, sd, p + "ff.") + y2


def reference_forward(x, sd, heads, repeats, gamma, cross_heads=8):
    """x (B, 4, C, 28, 28); the release's CausalNet.forward in eval mode (dropout 0)."""
    levels = len(repeats)
    t = [_branch(x[:, i], sd, f"stages.0.branches.{i // 2}.", heads, levels, repeats) for i in range(4)]
    a, b = t[2], t[3]
    width = a.shape[-1]
    for layer in range(repeats[-1]):  # the release's leaked loop variable: depth = block_repeats[-1]
        p = f"stages.0.cross.{layer}."
        na, nb = _ln(a, sd, p + "norm."), _ln(b, sd, p + "norm.")
        a = a + _grid_attn(na, b, sd, p + "attn.", cross_heads, width**-0.5, gamma)
        b = b + _grid_attn(nb, a, sd, p + "attn.", cross_heads, width**-0.5, gamma)
        a = _ff(a, sd, p + "ff.") + a
        b = _ff(b, sd, p + "ff.") + b
    u, w = t[0] + a, t[1] + b
    u_f, w_f = _cab_pass(u, w, sd, cross_heads, gamma)
    w_b, u_b = _cab_pass(w, u, sd, cross_heads, gamma)
    p = "stages.1.mining."
    d = width // cross_heads
    q = _lin(w_f, sd, p + "q.").reshape(*w_f.shape[:2], cross_heads, d)
    k = _lin(u_b, sd, p + "k.").reshape(*w_f.shape[:2], cross_heads, d)
    v = _lin(w_f + u_b, sd, p + "v.").reshape(*w_f.shape[:2], cross_heads, d)
    att = torch.softmax(torch.einsum("bihd,bjhd->bhij", q, k) * d**-0.5, dim=-1)
    long = _lin(torch.einsum("bhij,bjhd->bihd", att, v).reshape(w_f.shape) + w_f + u_b, sd, p + "proj.")
    flat = torch.cat([long, u_f, w_b], dim=1).flatten(1)
    return _lin(_lin(flat, sd, "head.0."), sd, "head.1.")


# --- tests ---

def test_trainable_params_equal_release():
    assert causalnet.RELEASED["trainable_params"] == RELEASED_TRAINABLE
    with torch.device("meta"):
        model = CausalNet(causalnet.RELEASED["num_classes"])
    assert n_trainable(model) == RELEASED_TRAINABLE
    assert len(model.stages[0].cross) == 9  # block_repeats[-1]


def test_matches_independent_functional_forward():
    model = make(3, randomise=True, **SMALL).eval()
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    x = clips(3) * 2
    with torch.no_grad():
        ours = model(x)
        ref = reference_forward(x.reshape(3, 4, 3, 28, 28), sd, heads=3, repeats=(1, 1, 2), gamma=0.3)
    assert ours.abs().max() > 0.1  # not a degenerate comparison
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-5)
    # the release's own layout (B, 4, C, S, S) gives the same logits
    torch.testing.assert_close(model(x.reshape(3, 4, 3, 28, 28)), ours)


@pytest.mark.parametrize("num_classes", [2, 3, 5])
@pytest.mark.parametrize("in_chans", [8, 12])
def test_output_shapes(num_classes, in_chans):
    model = make(num_classes, in_chans=in_chans, **TINY).eval()
    with torch.no_grad():
        out = model(clips(2, in_chans))
    assert out.shape == (2, num_classes) and torch.isfinite(out).all()
    assert model.stages[0](clips(2, in_chans)).shape == (2, 2, 4, 8)


def test_wrong_inputs_and_options_rejected():
    model = make(3, **TINY)
    for bad in (torch.zeros(2, 8, 28, 28), torch.zeros(2, 12, 32, 32), torch.zeros(12, 28, 28),
                torch.zeros(2, 4, 2, 28, 28)):
        with pytest.raises(ValueError, match="CausalNet expects"):
            model(bad)
    with pytest.raises(ValueError, match="multiple of 4"):
        CausalNet(3, in_chans=10, **TINY)
    with pytest.raises(ValueError, match="multiple of patch_size"):
        CausalNet(3, img_size=30, **TINY)
    with pytest.raises(ValueError, match="end at 1 x 1"):
        CausalNet(3, img_size=56, **TINY)
    with pytest.raises(ValueError, match="cross_heads"):
        CausalNet(3, dim=12, heads=1, block_repeats=(1, 1, 1))
    with pytest.raises(ValueError, match="block_repeats"):
        CausalNet(3, dim=8, block_repeats=(1, 1))
    with pytest.raises(ValueError, match="num_classes"):
        CausalNet(0, **TINY)


def test_grid_attention_ignores_diagonal_tokens():
    model = make(3, randomise=True, **SMALL).eval()
    g = torch.Generator().manual_seed(5)
    x, ctx = torch.randn(2, 4, 16, generator=g), torch.randn(2, 4, 16, generator=g)
    for attn in (model.stages[0].cross[0].attn, model.stages[1].attn.spatial):
        with torch.no_grad():
            w = attn.weights(x, ctx)
            for i, j in DIAGONAL:
                assert torch.equal(w[..., i, j], torch.zeros_like(w[..., i, j]))
            near = w.masked_select(attn.mask.bool())
            assert (near > 0).all()
            assert (w.sum(-1) < 1).all()  # exp(P) of the masked pair stays in the softmax's denominator
            # changing context token 3 leaves query token 0's output alone, not token 1's
            ctx2 = ctx.clone()
            ctx2[:, 3] += 1.0
            out, out2 = attn(x, ctx), attn(x, ctx2)
        torch.testing.assert_close(out2[:, 0], out[:, 0], rtol=0, atol=1e-6)
        assert not torch.allclose(out2[:, 1], out[:, 1])


def test_manifold_mixing():
    model = make(3, randomise=True, **TINY).eval()
    x = clips(4)
    perm = torch.tensor([2, 0, 3, 1])
    with torch.no_grad():
        plain, permuted = model(x), model(x[perm])
        for block in (0, 1, 2):  # 2 is past the last stage: clipped to 1
            torch.testing.assert_close(model(x, manifold=ManifoldPlan(block, 1.0, perm)), plain)
        torch.testing.assert_close(model(x, manifold=ManifoldPlan(0, 0.0, perm)), permuted, rtol=1e-4, atol=1e-5)
        mixed = model(x, manifold=ManifoldPlan(1, 0.4, perm))
        h = model.stages[0](x)
        expected = model.head(model.stages[1](0.4 * h + 0.6 * h[perm]))
        torch.testing.assert_close(mixed, expected)
        assert not torch.allclose(mixed, plain)
        # block 0 mixes the input images, which is not the same as mixing the fused tokens
        assert not torch.allclose(model(x, manifold=ManifoldPlan(0, 0.4, perm)), mixed)
    with pytest.raises(ValueError):
        model(x, manifold=ManifoldPlan(-1, 0.5, perm))


def test_backward_finite_grads_and_eval_batch_one():
    model = make(3, dropout=0.1, **TINY).train()
    logits = model(clips(3), manifold=ManifoldPlan(1, 0.6, torch.tensor([2, 0, 1])))
    F.cross_entropy(logits, torch.tensor([0, 1, 2])).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    model.eval()
    with torch.no_grad():
        out = model(clips(1))
    assert out.shape == (1, 3) and torch.isfinite(out).all()


def _release_name(key: str) -> str:
    """Our key -> the release's (Models.py) name, written from the release's module tree."""
    key = re.sub(r"^stages\.0\.branches\.0\.embed\.", "to_patch_embedding.1.", key)
    key = re.sub(r"^stages\.0\.branches\.1\.embed\.", "to_patch_embedding1.1.", key)
    key = re.sub(r"^stages\.0\.branches\.0\.levels\.", "layers.", key)
    key = re.sub(r"^stages\.0\.branches\.1\.levels\.", "layers1.", key)
    subs = (
        (r"^(layers1?\.\d+)\.pos$", r"\1.0.pos_emb"),
        (r"^(layers1?\.\d+)\.blocks\.(\d+)\.attn_norm\.", r"\1.0.layers.\2.0.norm."),
        (r"^(layers1?\.\d+)\.blocks\.(\d+)\.attn\.qkv\.", r"\1.0.layers.\2.0.fn.to_qkv."),
        (r"^(layers1?\.\d+)\.blocks\.(\d+)\.attn\.proj\.", r"\1.0.layers.\2.0.fn.to_out.0."),
        (r"^(layers1?\.\d+)\.blocks\.(\d+)\.ff_norm\.", r"\1.0.layers.\2.1.norm."),
        (r"^(layers1?\.\d+)\.blocks\.(\d+)\.ff\.fc1\.", r"\1.0.layers.\2.1.fn.net.0."),
        (r"^(layers1?\.\d+)\.blocks\.(\d+)\.ff\.fc2\.", r"\1.0.layers.\2.1.fn.net.3."),
        (r"^(layers1?\.\d+)\.merge\.conv\.", r"\1.1.0."),
        (r"^(layers1?\.\d+)\.merge\.norm\.", r"\1.1.1."),
        (r"^stages\.0\.cross\.(\d+)\.norm\.", r"CrossAttention.layers.\1.0."),
        (r"^stages\.0\.cross\.(\d+)\.attn\.(q|kv)\.", r"CrossAttention.layers.\1.1.to_\2."),
        (r"^stages\.0\.cross\.(\d+)\.attn\.proj\.", r"CrossAttention.layers.\1.1.to_out.0."),
        (r"^stages\.0\.cross\.(\d+)\.ff\.fc1\.", r"CrossAttention.layers.\1.2.0."),
        (r"^stages\.0\.cross\.(\d+)\.ff\.fc2\.", r"CrossAttention.layers.\1.2.3."),
        (r"^stages\.1\.norm\.", "cab.layers.0.0."),
        (r"^stages\.1\.attn\.spatial\.(q|kv)\.", r"cab.layers.0.1.to_\1."),
        (r"^stages\.1\.attn\.spatial\.proj\.", "cab.layers.0.1.to_out.0."),
        (r"^stages\.1\.attn\.temporal_(q|kv)\.", r"cab.layers.0.1.temp_to_\1."),
        (r"^stages\.1\.attn\.temporal_proj\.", "cab.layers.0.1.temp_to_out.0."),
        (r"^stages\.1\.ff\.fc1\.", "cab.layers.0.2.0."),
        (r"^stages\.1\.ff\.fc2\.", "cab.layers.0.2.3."),
        (r"^stages\.1\.mining\.(q|k|v)\.", r"cab.layers.0.3.to_\1."),
        (r"^stages\.1\.mining\.proj\.", "cab.layers.0.3.to_out.0."),
        (r"^head\.", "mlp_head."),
    )
    for pat, rep in subs:
        key = re.sub(pat, rep, key)
    if re.search(r"(norm\.|layers1?\.\d+\.1\.1\.)(weight|bias)$", key) and not key.startswith(("Cross", "cab")):
        key = key.replace(".weight", ".g").replace(".bias", ".b")
    return key


def test_state_dict_from_release_maps_every_key():
    model = make(3, randomise=True, **TINY)
    ours = model.state_dict()
    release = {_release_name(k): v for k, v in ours.items()}
    assert "layers1.2.0.layers.0.0.fn.to_qkv.weight" in release and "layers.0.1.1.g" in release
    release["cab.layers.0.1.M_mask"] = torch.ones(4, 4)  # the release's mask buffers are dropped
    release["CrossAttention.layers.0.1.P_matrix"] = torch.zeros(4, 4)
    back = state_dict_from_release({"module." + k: v for k, v in release.items()})
    assert back.keys() == ours.keys()
    for k, v in ours.items():
        assert back[k] is v, k
    with pytest.raises(KeyError):
        state_dict_from_release({"fc.weight": torch.zeros(1)})


@pytest.mark.parametrize("method", [*INPUT_SPACE_METHODS, "manifold_mixup"])
def test_one_training_step_with_each_mixing_method(method):
    """Every mixing method defined for CausalNet trains it: the mixed batch goes through the network (manifold mixup
    between its stages), the loss on the mixed targets back-propagates, and one optimizer step changes the head."""
    torch.manual_seed(0)
    classes, size, chans = 3, 28, 12
    net = models.NetModel(CausalNet(classes, in_chans=chans, img_size=size, **TINY), "causalnet", in_chans=chans,
                          img_size=size)
    net.train()
    x = torch.randn(6, chans, size, size)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    mixer = mixing.get(method, classes, patch_size=net.patch_size)
    mixer.fit_to_depth(net.depth)
    mixer.bind(y, x)
    plan = mixer.mix_inputs(x, y, torch.Generator().manual_seed(1))
    logits = net(plan.x, manifold=plan.manifold)
    loss = -(mixer.mix_targets(plan) * torch.log_softmax(logits, -1)).sum(-1).mean()
    if mixer.clean_loss:
        loss = loss + F.cross_entropy(net(x), y)
    head = net.net.head[-1].weight.detach().clone()
    opt = torch.optim.RMSprop([p for p in net.parameters() if p.requires_grad], lr=1e-3)
    loss.backward()
    opt.step()
    assert torch.isfinite(loss) and not torch.equal(net.net.head[-1].weight, head)
    assert all(torch.isfinite(p).all() for p in net.parameters())
