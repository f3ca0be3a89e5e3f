"""MMNet (memix.models.arch.mmnet): shapes, released parameter count, manifold wiring, gradients, and an independent
functional reference of the released forward (muse1998/MMNet @ 7b62fa9, CASME2_5.py / CA_block.py / PC_module.py)
evaluated on the same weights under the release's key names."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from memix.mixing.base import ManifoldPlan
from memix.models.arch import mmnet
from memix.models.arch.mmnet import MMNet

torch.set_num_threads(1)

SMALL = 32  # smallest size the network allows (a 2x2 fused map)


def _model(num_classes: int = 5, img_size: int = SMALL, seed: int = 0, **kw) -> MMNet:
    torch.manual_seed(seed)
    return MMNet(num_classes, img_size=img_size, **kw)


def _x(batch: int, img_size: int = SMALL, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, 6, img_size, img_size, generator=torch.Generator().manual_seed(seed))


def _randomise_bn(model: torch.nn.Module, seed: int = 2) -> None:
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=g) * 0.4 - 0.2)


@pytest.mark.parametrize("num_classes", [3, 5, 7])
def test_output_shape(num_classes: int) -> None:
    model = _model(num_classes)
    assert model(_x(2)).shape == (2, num_classes)


def test_release_size_shapes() -> None:
    model = _model(5, img_size=224)
    assert model.grid == 14 and model.stages[0].vit_pos.pos_embed.shape == (1, 196, 512)
    assert model.head[1].in_features == 512 * 14 * 14


def test_trainable_params_equal_released_used_count() -> None:
    # 9,438,841: the release's MMNet (CASME2_5.py, 5 classes, 224) registers 9,970,947 trainable parameters, of which
    # 9,438,841 receive a gradient (counted by building the release and backpropagating one forward). By layer:
    # conv_act 3*180*9 + 360 = 5,220; PC: patch 3*512 + 512, pos_embed 196*512, 2 blocks * 3,152,384, norm 1,024
    # = 6,408,192; main branch: stem 207,360 + 256, CA blocks 164,356 + 180,996 + 394,756 + 1,575,940,
    # fc 100,352*5 + 5 = 3,025,429.
    model = _model(5, img_size=224)
    n = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert n == 9_438_841 == mmnet.RELEASED["trainable_params"]
    assert mmnet.RELEASED["registered_params"] - n == 2_560 + 476_672 + 49_284 + 512 + 2_565 + 513


def test_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError):
        MMNet(5, img_size=40)
    with pytest.raises(ValueError):
        MMNet(5, in_chans=3)
    with pytest.raises(ValueError):
        _model()(torch.zeros(1, 3, SMALL, SMALL))


def test_manifold_block0_lam1_and_lam0() -> None:
    model = _model().eval()
    x = _x(4)
    perm = torch.tensor([2, 0, 3, 1])
    with torch.no_grad():
        plain = model(x)
        same = model(x, ManifoldPlan(block=0, lam=1.0, perm=perm))
        swapped = model(x, ManifoldPlan(block=0, lam=0.0, perm=perm))
        of_perm = model(x[perm])
    torch.testing.assert_close(same, plain)
    torch.testing.assert_close(swapped, of_perm)


def test_manifold_at_fused_map_is_wired() -> None:
    # the head is flatten + Linear, so mixing the fused map (block 1) blends the logits' pre-bias parts linearly:
    # logits_mix = lam * logits + (1 - lam) * logits[perm]; a block past the last is clipped to block 1
    model = _model().eval()
    x = _x(4)
    perm = torch.tensor([1, 2, 3, 0])
    lam = torch.tensor([0.2, 0.5, 0.9, 1.0])
    with torch.no_grad():
        plain = model(x)
        mixed = model(x, ManifoldPlan(block=1, lam=lam, perm=perm))
        clipped = model(x, ManifoldPlan(block=7, lam=0.3, perm=perm))
        at_input = model(x, ManifoldPlan(block=0, lam=0.3, perm=perm))
    torch.testing.assert_close(mixed, lam[:, None] * plain + (1 - lam[:, None]) * plain[perm])
    torch.testing.assert_close(clipped, 0.3 * plain + 0.7 * plain[perm])
    assert not torch.allclose(at_input, clipped, atol=1e-4)  # input mixing is not logit mixing


def test_backward_finite_grads_for_every_parameter() -> None:
    model = _model(3).train()
    out = model(_x(3))
    F.cross_entropy(out, torch.tensor([0, 1, 2])).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_eval_batch_one() -> None:
    model = _model(5).eval()
    with torch.no_grad():
        out = model(_x(1))
    assert out.shape == (1, 5) and torch.isfinite(out).all()


# ---- independent reference: the released forward as plain functional math over a release-named state dict ----


def _to_release_names(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in sd.items():
        if k.startswith("head.1."):
            out["main_branch.fc." + k[len("head.1.") :]] = v
        else:
            assert k.startswith("stages.0."), k
            out[k[len("stages.0.") :]] = v
    return out


def _bn(x: torch.Tensor, sd: dict, p: str) -> torch.Tensor:
    return F.batch_norm(x, sd[p + ".running_mean"], sd[p + ".running_var"], sd[p + ".weight"], sd[p + ".bias"],
                        False, 0.0, 1e-5)


def _ln(x: torch.Tensor, sd: dict, p: str) -> torch.Tensor:
    return F.layer_norm(x, x.shape[-1:], sd[p + ".weight"], sd[p + ".bias"], 1e-6)


def _lin(x: torch.Tensor, sd: dict, p: str) -> torch.Tensor:
    return F.linear(x, sd[p + ".weight"], sd[p + ".bias"])


def _reference(sd: dict, onset: torch.Tensor, apex: torch.Tensor, grid: int, heads: int = 4) -> torch.Tensor:
    b = onset.shape[0]
    # PC module (vit_pos): Resize -> 1x1 patch conv -> + pos_embed -> pre-norm blocks -> norm -> (B, 512, g, g)
    small = F.interpolate(onset, size=(grid, grid), mode="bilinear", align_corners=False)
    t = F.conv2d(small, sd["vit_pos.patch_embed.proj.weight"], sd["vit_pos.patch_embed.proj.bias"])
    t = t.flatten(2).transpose(1, 2) + sd["vit_pos.pos_embed"]
    n, c = t.shape[1], t.shape[2]
    i = 0
    while f"vit_pos.blocks.{i}.norm1.weight" in sd:
        p = f"vit_pos.blocks.{i}."
        qkv = _lin(_ln(t, sd, p + "norm1"), sd, p + "attn.qkv").reshape(b, n, 3, heads, c // heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        a = torch.softmax(q @ k.transpose(-2, -1) * (c // heads) ** -0.5, dim=-1)
        t = t + _lin((a @ v).transpose(1, 2).reshape(b, n, c), sd, p + "attn.proj")
        h = F.gelu(_lin(_ln(t, sd, p + "norm2"), sd, p + "mlp.fc1"))
        t = t + _lin(h, sd, p + "mlp.fc2")
        i += 1
    pos = _ln(t, sd, "vit_pos.norm").transpose(1, 2).reshape(b, c, grid, grid)
    # main branch on the apex - onset difference
    x = F.relu(_bn(F.conv2d(apex - onset, sd["conv_act.0.weight"], stride=2, padding=1), sd, "conv_act.1"))
    x = F.relu(_bn(F.conv2d(x, sd["main_branch.conv1.weight"], padding=1), sd, "main_branch.bn1"))
    prior = None
    for layer, stride in zip((1, 2, 3, 4), (1, 2, 2, 2), strict=True):
        p = f"main_branch.layer{layer}.0."
        y = F.relu(_bn(F.conv2d(x, sd[p + "conv1.weight"], stride=stride, padding=1), sd, p + "bn1"))
        y = _bn(F.conv2d(y, sd[p + "conv2.weight"]), sd, p + "bn2")
        short = x
        if p + "downsample.0.weight" in sd:
            short = _bn(F.conv2d(x, sd[p + "downsample.0.weight"], stride=stride), sd, p + "downsample.1")
        y = F.relu(y + short)
        m = torch.cat([y.mean(1, keepdim=True), y.max(1, keepdim=True).values], 1)
        m = torch.sigmoid(_bn(F.conv2d(m, sd[p + "attn.0.weight"]), sd, p + "attn.1"))
        if prior is not None:
            m = m * prior
        x = y * m.repeat(1, y.shape[1], 1, 1)
        prior = F.max_pool2d(m, 3, 2, 1)
    return _lin(torch.flatten(x + pos, 1), sd, "main_branch.fc")


@pytest.mark.parametrize("img_size", [32, 64])
def test_matches_functional_reference_of_released_forward(img_size: int) -> None:
    model = _model(5, img_size=img_size)
    _randomise_bn(model)
    model.eval()
    sd = _to_release_names(model.state_dict())
    assert mmnet.state_dict_from_release(sd).keys() == model.state_dict().keys()
    x = _x(2, img_size)
    with torch.no_grad():
        ours = model(x)
        ref = _reference(sd, x[:, :3], x[:, 3:], img_size // 16)
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-5)


def test_state_dict_from_release_drops_unused_modules() -> None:
    model = _model(5)
    sd = _to_release_names(model.state_dict())
    extra = {k: torch.zeros(1) for k in ("pos.0.weight", "head.1.weight", "timeembed", "vit_pos.cls_token",
                                          "vit_pos.head.weight", "vit_pos.to_Mask.0.weight")}
    model.load_state_dict(mmnet.state_dict_from_release({**sd, **extra}), strict=True)
