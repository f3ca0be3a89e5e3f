"""HTNet (memix.models.arch.htnet): the released parameter count and state-dict layout, agreement with an independent
functional forward written from the release's description (wangzhifengharrison/HTNet Model.py), the one-token blocks
at the release's sizes, shapes, manifold mixing, gradients, batch-size-1 eval and one training step per mixing method.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from memix import mixing, models
from memix.mixing.base import ManifoldPlan
from memix.models.arch import htnet
from memix.models.arch.htnet import HTNet, convert_released
from memix.names import INPUT_SPACE_METHODS

torch.set_num_threads(1)

# Trainable parameters of the released model: wangzhifengharrison/HTNet@91cf4bd Model.py HTNet(image_size=28,
# patch_size=7, dim=256, heads=3, num_hierarchies=3, block_repeats=(2, 2, 10), num_classes=3) (main_HTNet.py
# 222-231) instantiated outside this repository and numel summed over its requires_grad parameters.
RELEASED_TRAINABLE = 139_582_982

SMALL = dict(dim=24, heads=3, block_repeats=(1, 1, 2))  # the release's layout at a CPU-friendly width
CONFIGS = {
    "release-28": dict(in_chans=3, img_size=28, patch_size=7, **SMALL),  # 4 x 4 map: one token per block
    "multi-token-56": dict(in_chans=3, img_size=56, patch_size=7, **SMALL),  # 8 x 8 map: 4 tokens per block
    "uv-uneven-heads": dict(in_chans=2, img_size=56, patch_size=7, dim=20, heads=3, block_repeats=(2, 1, 1)),
}


def n_trainable(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters() if p.requires_grad)


def release_shapes(num_classes: int, in_chans: int, img_size: int, patch_size: int, dim: int, heads: int,
                   block_repeats: tuple[int, ...], num_hierarchies: int = 3, mlp_mult: int = 4) -> dict[str, tuple]:
    """Keys and shapes of the release's HTNet state dict, written from its description (not from its code)."""
    dims = [dim * 2**i for i in range(num_hierarchies)]
    seq_len = (img_size // patch_size // 2 ** (num_hierarchies - 1)) ** 2

    def norm(d: int) -> tuple[int, ...]:
        return (1, d, 1, 1)

    s = {"to_patch_embedding.1.weight": (dims[0], patch_size**2 * in_chans, 1, 1),
         "to_patch_embedding.1.bias": (dims[0],)}
    for i, d in enumerate(dims):
        inner = d // (heads * 2**i) * (heads * 2**i)
        s[f"layers.{i}.0.pos_emb"] = (seq_len,)
        for j in range(block_repeats[i]):
            a, f = f"layers.{i}.0.layers.{j}.0.", f"layers.{i}.0.layers.{j}.1."
            s |= {a + "norm.g": norm(d), a + "norm.b": norm(d), a + "fn.to_qkv.weight": (3 * inner, d, 1, 1),
                  a + "fn.to_out.0.weight": (d, inner, 1, 1), a + "fn.to_out.0.bias": (d,)}
            s |= {f + "norm.g": norm(d), f + "norm.b": norm(d), f + "fn.net.0.weight": (d * mlp_mult, d, 1, 1),
                  f + "fn.net.0.bias": (d * mlp_mult,), f + "fn.net.3.weight": (d, d * mlp_mult, 1, 1),
                  f + "fn.net.3.bias": (d,)}
        if i < num_hierarchies - 1:
            s |= {f"layers.{i}.1.0.weight": (dims[i + 1], d, 3, 3), f"layers.{i}.1.0.bias": (dims[i + 1],),
                  f"layers.{i}.1.1.g": norm(dims[i + 1]), f"layers.{i}.1.1.b": norm(dims[i + 1])}
    return s | {"mlp_head.0.g": norm(dims[-1]), "mlp_head.0.b": norm(dims[-1]),
                "mlp_head.2.weight": (num_classes, dims[-1]), "mlp_head.2.bias": (num_classes,)}


def random_release_state(shapes: dict[str, tuple], seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights with non-trivial norms and position values."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for k, shape in shapes.items():
        t = torch.randn(shape, generator=g)
        if k.endswith(".g"):
            t = 1 + 0.2 * t
        elif k.endswith(".b") or k.endswith("bias"):
            t = 0.1 * t
        elif k.endswith("weight"):
            t = t / math.sqrt(math.prod(shape[1:]))
        sd[k] = t
    return sd


def make(num_classes: int, cfg: dict, seed: int = 0) -> tuple[HTNet, dict[str, torch.Tensor]]:
    """An HTNet with random weights loaded (strictly) from a release-keyed state dict, and that state dict."""
    sd = random_release_state(release_shapes(num_classes, **cfg), seed)
    model = HTNet(num_classes, **cfg)
    model.load_state_dict(convert_released(sd), strict=True)
    return model.eval(), sd


# --- an independent reference: the release's forward written with torch.nn.functional on release-named weights ---

def _channel_ln(x: torch.Tensor, g: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """LayerNorm over dim 1 of (B, C, H, W) via F.layer_norm on channel-last tokens (biased variance, eps 1e-5)."""
    return F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), g.flatten(), b.flatten(), 1e-5).permute(0, 3, 1, 2)


def _ref_transformer(x, sd, p, heads, depth):
    b, c, h, w = x.shape
    x = x + sd[p + "pos_emb"][: h * w].view(1, 1, h, w)
    t = x.flatten(2).transpose(1, 2)  # (B, N, C) tokens in row-major order
    for j in range(depth):
        a, f = f"{p}layers.{j}.0.", f"{p}layers.{j}.1."
        n = F.layer_norm(t, (c,), sd[a + "norm.g"].flatten(), sd[a + "norm.b"].flatten(), 1e-5)
        wqkv = sd[a + "fn.to_qkv.weight"].flatten(1)
        inner = wqkv.shape[0] // 3
        dh = inner // heads
        q, k, v = (n @ wqkv[i * inner:(i + 1) * inner].T for i in range(3))
        outs = []
        for hd in range(heads):
            sl = slice(hd * dh, (hd + 1) * dh)
            attn = torch.softmax(q[..., sl] @ k[..., sl].transpose(1, 2) * dh**-0.5, dim=-1)
            outs.append(attn @ v[..., sl])
        t = t + F.linear(torch.cat(outs, -1), sd[a + "fn.to_out.0.weight"].flatten(1), sd[a + "fn.to_out.0.bias"])
        n = F.layer_norm(t, (c,), sd[f + "norm.g"].flatten(), sd[f + "norm.b"].flatten(), 1e-5)
        hidden = F.gelu(F.linear(n, sd[f + "fn.net.0.weight"].flatten(1), sd[f + "fn.net.0.bias"]))
        t = t + F.linear(hidden, sd[f + "fn.net.3.weight"].flatten(1), sd[f + "fn.net.3.bias"])
    return t.transpose(1, 2).reshape(b, c, h, w)


def reference_forward(sd: dict[str, torch.Tensor], x: torch.Tensor, patch_size: int, heads: int,
                      block_repeats: tuple[int, ...]) -> torch.Tensor:
    b, c, hh, ww = x.shape
    p = patch_size
    # 'b c (h p1) (w p2) -> b (p1 p2 c) h w' via unfold, whose columns are ordered (c, p1, p2)
    cols = F.unfold(x, kernel_size=p, stride=p).view(b, c, p * p, -1).transpose(1, 2).reshape(b, p * p * c, -1)
    x = F.conv2d(cols.view(b, p * p * c, hh // p, ww // p), sd["to_patch_embedding.1.weight"],
                 sd["to_patch_embedding.1.bias"])
    levels = len(block_repeats)
    for i, level in enumerate(reversed(range(levels))):
        n = 2**level
        bh, bw = x.shape[2] // n, x.shape[3] // n
        rows = []
        for r in range(n):
            row = [_ref_transformer(x[:, :, r * bh:(r + 1) * bh, col * bw:(col + 1) * bw], sd, f"layers.{i}.0.",
                                    heads * 2**i, block_repeats[i]) for col in range(n)]
            rows.append(torch.cat(row, dim=3))
        x = torch.cat(rows, dim=2)
        if level > 0:
            x = F.conv2d(x, sd[f"layers.{i}.1.0.weight"], sd[f"layers.{i}.1.0.bias"], padding=1)
            x = F.max_pool2d(_channel_ln(x, sd[f"layers.{i}.1.1.g"], sd[f"layers.{i}.1.1.b"]), 3, stride=2, padding=1)
    x = _channel_ln(x, sd["mlp_head.0.g"], sd["mlp_head.0.b"]).mean(dim=(2, 3))
    return F.linear(x, sd["mlp_head.2.weight"], sd["mlp_head.2.bias"])


def images(b: int, cfg: dict, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, cfg["in_chans"], cfg["img_size"], cfg["img_size"], generator=g)


# --- tests ---

def test_trainable_params_and_layout_equal_release():
    assert htnet.RELEASED["trainable_params"] == RELEASED_TRAINABLE
    with torch.device("meta"):  # 140 M parameters: count them without allocating
        model = HTNet(htnet.RELEASED["num_classes"])
    assert n_trainable(model) == RELEASED_TRAINABLE
    # the release's keys map one-to-one onto this module's, with the same shapes, at the release's configuration
    shapes = release_shapes(3, in_chans=3, img_size=28, patch_size=7, dim=256, heads=3, block_repeats=(2, 2, 10))
    assert sum(math.prod(s) for s in shapes.values()) == RELEASED_TRAINABLE
    converted = convert_released({k: torch.empty(s, device="meta") for k, s in shapes.items()})
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in converted.items()} == ours
    with pytest.raises(KeyError, match="unexpected key"):
        convert_released({"layers.0.2.weight": torch.zeros(1)})


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_matches_independent_functional_forward(name):
    cfg = CONFIGS[name]
    model, sd = make(4, cfg)
    x = images(3, cfg)
    with torch.no_grad():
        ours = model(x)
        ref = reference_forward(sd, x, cfg["patch_size"], cfg["heads"], cfg["block_repeats"])
    assert ours.shape == (3, 4)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-5)


@pytest.mark.parametrize(("name", "tokens"), [("release-28", 1), ("multi-token-56", 4)])
def test_tokens_per_block_and_whether_attention_matters(name, tokens):
    """At the release's sizes every block holds one token, so softmax is over one key: q and k change nothing and
    get no gradient. With 4 tokens per block they do."""
    cfg = CONFIGS[name]
    model, _ = make(3, cfg)
    seen = []
    hooks = [s.blocks[0].register_forward_hook(lambda m, i, o: seen.append(i[0].shape[-2:]))
             for s in model.stages[1:]]
    x = images(4, cfg)
    with torch.no_grad():
        before = model(x)
    for h in hooks:
        h.remove()
    assert [math.prod(s) for s in seen] == [tokens] * 3
    qk = [layer.attn.qkv.weight for s in model.stages[1:] for layer in s.blocks]
    with torch.no_grad():
        for w in qk:
            w[: 2 * (w.shape[0] // 3)].normal_()
        after = model(x)
    F.cross_entropy(model(x), torch.tensor([0, 1, 2, 0])).backward()
    qk_grad = max(w.grad[: 2 * (w.shape[0] // 3)].abs().max().item() for w in qk)
    if tokens == 1:
        torch.testing.assert_close(after, before, rtol=0, atol=1e-5)
        assert qk_grad < 1e-6
    else:
        assert (after - before).abs().max() > 1e-3
        assert qk_grad > 1e-4


@pytest.mark.parametrize("num_classes", [2, 3, 5, 7])
@pytest.mark.parametrize("in_chans", [2, 3])
def test_output_shape(num_classes, in_chans):
    cfg = dict(CONFIGS["release-28"], in_chans=in_chans)
    model = HTNet(num_classes, **cfg).eval()
    with torch.no_grad():
        assert model(images(2, cfg)).shape == (2, num_classes)
        assert model.stages[0](images(2, cfg)).shape == (2, 24, 4, 4)
    assert len(model.stages) == 4 and model.head.fc.in_features == 4 * 24
    with pytest.raises(ValueError, match=rf"HTNet expects \(B, {in_chans}, 28, 28\)"):
        model(torch.zeros(2, 5 - in_chans, 28, 28))
    with pytest.raises(ValueError, match="expects"):
        model(torch.zeros(2, in_chans, 32, 32))
    with pytest.raises(ValueError, match="expects"):
        model(torch.zeros(in_chans, 28, 28))


def test_defaults_are_the_release_configuration_and_bad_arguments_are_rejected():
    with torch.device("meta"):
        model = HTNet(3)
    assert (model.in_chans, model.img_size, model.patch_size) == (3, 28, 7)
    assert [len(s.blocks) for s in model.stages[1:]] == [2, 2, 10]
    assert [s.blocks[0].attn.heads for s in model.stages[1:]] == [3, 6, 12]
    assert [s.blocks[0].attn_norm.weight.shape[1] for s in model.stages[1:]] == [256, 512, 1024]
    with pytest.raises(ValueError, match="multiple of patch_size"):
        HTNet(3, img_size=30)
    with pytest.raises(ValueError, match="divisible by 2"):
        HTNet(3, img_size=42, **SMALL)  # 6 x 6 map, not divisible by 4
    with pytest.raises(ValueError, match="heads"):
        HTNet(3, dim=2, heads=3)
    with pytest.raises(ValueError, match="block_repeats"):
        HTNet(3, dim=8, block_repeats=(1, 1))
    with pytest.raises(ValueError, match=">= 1"):
        HTNet(0, **SMALL)
    assert len(HTNet(3, dim=8, heads=1, block_repeats=1).stages[3].blocks) == 1


def test_manifold_mixing():
    cfg = CONFIGS["multi-token-56"]
    model, _ = make(3, cfg)
    x, perm = images(4, cfg), torch.tensor([2, 0, 3, 1])
    with torch.no_grad():
        plain, permuted = model(x), model(x[perm])
        for block in range(6):  # 4 and 5 are past the last stage: clipped to 3
            torch.testing.assert_close(model(x, manifold=ManifoldPlan(block, 1.0, perm)), plain)
            torch.testing.assert_close(model(x, manifold=ManifoldPlan(block, 0.0, perm)), permuted, rtol=1e-4,
                                       atol=1e-5)
        mixed = model(x, manifold=ManifoldPlan(2, 0.4, perm))
        assert (mixed - plain).abs().max() > 1e-3
        assert (mixed - model(x, manifold=ManifoldPlan(0, 0.4, perm))).abs().max() > 1e-3
        h = model.stages[1](model.stages[0](x))  # the map entering level 1 (stage 2)
        expected = model.head(model.stages[3](model.stages[2](0.4 * h + 0.6 * h[perm])))
        torch.testing.assert_close(mixed, expected)
    with pytest.raises(ValueError):
        model(x, manifold=ManifoldPlan(-1, 0.5, perm))


def test_backward_finite_grads_and_eval_batch_size_one():
    cfg = CONFIGS["multi-token-56"]
    model, _ = make(3, cfg)
    model.train()
    logits = model(images(3, cfg), manifold=ManifoldPlan(1, 0.6, torch.tensor([2, 0, 1])))
    F.cross_entropy(logits, torch.tensor([0, 1, 2])).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    model.eval()
    with torch.no_grad():
        out = model(images(1, cfg))
    assert out.shape == (1, 3) and torch.isfinite(out).all()


@pytest.mark.parametrize("method", (*INPUT_SPACE_METHODS, "manifold_mixup"))
def test_one_training_step_with_each_mixing_method_defined_for_it(method):
    """Every mixing method defined for HTNet trains it: the mixed batch goes through the network (manifold mixup
    between its stages), the loss on the mixed targets back-propagates, and one optimizer step changes the head and
    keeps it finite."""
    torch.manual_seed(0)
    in_chans, size, classes = 3, 28, 3
    net = models.NetModel(HTNet(classes, in_chans, size, dim=8, heads=1, block_repeats=(1, 1, 1), mlp_mult=2),
                          "htnet", in_chans=in_chans, img_size=size)
    net.train()
    x = torch.randn(6, in_chans, size, size)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    mixer = mixing.get(method, classes, patch_size=net.patch_size)
    mixer.fit_to_depth(net.depth)
    mixer.bind(y, x)
    plan = mixer.mix_inputs(x, y, torch.Generator().manual_seed(1))
    logits = net(plan.x, manifold=plan.manifold)
    loss = -(mixer.mix_targets(plan) * torch.log_softmax(logits, -1)).sum(-1).mean()
    if mixer.clean_loss:
        loss = loss + F.cross_entropy(net(x), y)
    head = net.net.head.fc.weight.detach().clone()
    opt = torch.optim.RMSprop([p for p in net.parameters() if p.requires_grad], lr=1e-3)
    loss.backward()
    opt.step()
    assert torch.isfinite(loss) and not torch.equal(net.net.head.fc.weight, head)
    assert all(torch.isfinite(p).all() for p in net.parameters())
