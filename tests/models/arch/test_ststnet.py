"""STSTNet (memix.models.arch.ststnet): shapes, the released parameter count, an independent functional forward
on the same weights, manifold mixing at both stages, gradients and batch-size-1 eval."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from memix.mixing.base import ManifoldPlan
from memix.models.arch import ststnet
from memix.models.arch.ststnet import STSTNet, convert_released

torch.set_num_threads(1)

# Trainable parameters of the released model for its 3 classes: the sum of numel over the trainable tensors of
# christy1206/STSTNet@1afb56e STSTNet_Weights/006.pth (conv1..3 and bn1..3 weight/bias, fc weight/bias; running
# statistics excluded), which also follows from main.py's layers: 3*27+3 + 5*27+5 + 8*27+8 + 2*(3+5+8) + 400*3+3.
RELEASED_TRAINABLE_3_CLASSES = 1683
WIDTHS = (3, 5, 8)


def n_trainable(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters() if p.requires_grad)


def released_state_dict(num_classes: int = 3, seed: int = 0) -> dict[str, torch.Tensor]:
    """A random state dict with the released main.py's keys and shapes (non-trivial BatchNorm statistics)."""
    g = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}
    for i, w in enumerate(WIDTHS, start=1):
        sd[f"conv{i}.weight"] = torch.randn(w, 3, 3, 3, generator=g) * 0.3
        sd[f"conv{i}.bias"] = torch.randn(w, generator=g) * 0.1
        sd[f"bn{i}.weight"] = 1 + 0.2 * torch.randn(w, generator=g)
        sd[f"bn{i}.bias"] = 0.1 * torch.randn(w, generator=g)
        sd[f"bn{i}.running_mean"] = 0.2 * torch.rand(w, generator=g)
        sd[f"bn{i}.running_var"] = 0.5 + torch.rand(w, generator=g)
        sd[f"bn{i}.num_batches_tracked"] = torch.tensor(7)
    sd["fc.weight"] = torch.randn(num_classes, 400, generator=g) * 0.05
    sd["fc.bias"] = torch.randn(num_classes, generator=g) * 0.1
    return sd


def reference_forward(sd: dict[str, torch.Tensor], x: torch.Tensor, padding: int, training: bool) -> torch.Tensor:
    """The released layers as plain functional ops (dropout left out: p = 0 in training, identity in eval).

    Per stream i: conv2d 3x3 (padding) -> relu -> batch_norm -> max_pool2d(3, 3, padding 1); then cat on channels
    (streams 1, 2, 3), avg_pool2d(2, 2), flatten, linear.
    """
    outs = []
    for i in range(1, 4):
        h = F.relu(F.conv2d(x, sd[f"conv{i}.weight"], sd[f"conv{i}.bias"], stride=1, padding=padding))
        h = F.batch_norm(
            h,
            sd[f"bn{i}.running_mean"].clone(),
            sd[f"bn{i}.running_var"].clone(),
            sd[f"bn{i}.weight"],
            sd[f"bn{i}.bias"],
            training=training,
            momentum=0.1,
            eps=1e-5,
        )
        outs.append(F.max_pool2d(h, kernel_size=3, stride=3, padding=1))
    h = F.avg_pool2d(torch.cat(outs, dim=1), kernel_size=2, stride=2, padding=0)
    return F.linear(h.flatten(1), sd["fc.weight"], sd["fc.bias"])


def make(num_classes: int = 3, seed: int = 0, **kw) -> STSTNet:
    torch.manual_seed(seed)
    return STSTNet(num_classes, **kw)


@pytest.fixture
def flow() -> torch.Tensor:
    return torch.randn(6, 3, 28, 28, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("num_classes", [3, 5, 7])
@pytest.mark.parametrize("conv_padding", [1, 2])
def test_output_shape(num_classes: int, conv_padding: int, flow: torch.Tensor) -> None:
    m = make(num_classes, conv_padding=conv_padding).eval()
    assert m(flow).shape == (6, num_classes)
    assert m.stages[0](flow).shape == (6, 16, 10, 10)
    assert m.head.in_features == 400


def test_default_conv_padding_is_the_papers_same_convolution(flow: torch.Tensor) -> None:
    """Table I / STSTNet.mat: 'same' 3x3 convolutions (padding 1, 28 x 28 maps), not main.py's padding 2 (30 x 30);
    both pool to 10 x 10, so only the conv maps and the outputs tell them apart. The pipeline's build (no
    ``model.options``) gets the same default."""
    from memix.config import ModelParams
    from memix.models import build

    built = build(ModelParams(name="ststnet"), 3, 3, 28)
    nets = [make(), next(m for m in built.modules() if isinstance(m, STSTNet))]
    for m in nets:
        convs = [s.conv for s in m.stages[0].streams]
        assert [c.padding for c in convs] == [(1, 1)] * 3
        assert [tuple(c(flow).shape[1:]) for c in convs] == [(w, 28, 28) for w in WIDTHS]
    sd = released_state_dict()
    m = make()
    m.load_state_dict(convert_released(sd))
    with torch.no_grad():
        torch.testing.assert_close(m.eval()(flow), reference_forward(sd, flow, 1, False), rtol=0, atol=1e-6)


def test_other_input_size() -> None:
    m = make(4, in_chans=2, img_size=40).eval()
    assert m(torch.randn(2, 2, 40, 40)).shape == (2, 4)
    with pytest.raises(ValueError, match="expects"):
        m(torch.randn(2, 3, 40, 40))
    with pytest.raises(ValueError, match="too small"):
        STSTNet(3, img_size=2)


@pytest.mark.parametrize("conv_padding", [1, 2])
def test_trainable_params_match_release(conv_padding: int) -> None:
    m = make(ststnet.RELEASED["num_classes"], conv_padding=conv_padding)
    assert n_trainable(m) == RELEASED_TRAINABLE_3_CLASSES == ststnet.RELEASED["trainable_params"]


def test_released_state_dict_loads_strictly() -> None:
    sd = released_state_dict()
    m = make(conv_padding=2)
    m.load_state_dict(convert_released(sd), strict=True)
    with pytest.raises(KeyError):
        convert_released({"conv4.weight": torch.zeros(1)})


@pytest.mark.parametrize("conv_padding", [2, 1])
def test_matches_functional_reference_eval(conv_padding: int, flow: torch.Tensor) -> None:
    """padding 2 is the released main.py, padding 1 the paper's / STSTNet.mat's 'same' convolution."""
    sd = released_state_dict()
    m = make(conv_padding=conv_padding)
    m.load_state_dict(convert_released(sd))
    m.eval()
    with torch.no_grad():
        torch.testing.assert_close(m(flow), reference_forward(sd, flow, conv_padding, False), rtol=0, atol=1e-6)


def test_matches_functional_reference_train_batch_stats(flow: torch.Tensor) -> None:
    sd = released_state_dict(seed=3)
    m = make(conv_padding=2, drop_rate=0.0)
    m.load_state_dict(convert_released(sd))
    m.train()
    with torch.no_grad():
        torch.testing.assert_close(m(flow), reference_forward(sd, flow, 2, True), rtol=0, atol=1e-6)


def _stage_inputs(m: STSTNet, x: torch.Tensor, **kw) -> tuple[torch.Tensor, list[torch.Tensor]]:
    seen: list[torch.Tensor] = []
    hooks = [s.register_forward_pre_hook(lambda _m, a: seen.append(a[0].detach().clone())) for s in m.stages]
    try:
        out = m(x, **kw)
    finally:
        for h in hooks:
            h.remove()
    return out, seen


@pytest.mark.parametrize("block", [0, 1, 4])
def test_manifold_mixing(block: int, flow: torch.Tensor) -> None:
    m = make(5).eval()
    perm = torch.tensor([3, 0, 5, 1, 2, 4])
    with torch.no_grad():
        plain, inputs = _stage_inputs(m, flow)
        same = m(flow, manifold=ManifoldPlan(block=block, lam=1.0, perm=perm))
        swapped = m(flow, manifold=ManifoldPlan(block=block, lam=0.0, perm=perm))
        torch.testing.assert_close(same, plain, rtol=0, atol=0)
        torch.testing.assert_close(swapped, m(flow[perm]), rtol=0, atol=1e-6)
        lam = torch.linspace(0.2, 0.9, 6)
        _, mixed_inputs = _stage_inputs(m, flow, manifold=ManifoldPlan(block=block, lam=lam, perm=perm))
    at = min(block, len(m.stages) - 1)
    h = inputs[at]
    want = lam.view(-1, *[1] * (h.ndim - 1)) * h + (1 - lam.view(-1, *[1] * (h.ndim - 1))) * h[perm]
    torch.testing.assert_close(mixed_inputs[at], want, rtol=0, atol=1e-6)
    for i in range(at):  # stages before the mixing point see the untouched tensors
        torch.testing.assert_close(mixed_inputs[i], inputs[i], rtol=0, atol=0)


def test_manifold_rejects_bad_plans(flow: torch.Tensor) -> None:
    m = make().eval()
    with pytest.raises(ValueError, match="block"):
        m(flow, manifold=ManifoldPlan(block=-1, lam=0.5, perm=torch.arange(6)))
    with pytest.raises(ValueError, match="perm"):
        m(flow, manifold=ManifoldPlan(block=0, lam=0.5, perm=torch.arange(5)))


def test_backward_finite_grads(flow: torch.Tensor) -> None:
    m = make(3).train()
    loss = F.cross_entropy(m(flow, manifold=ManifoldPlan(1, 0.7, torch.arange(6).flip(0))), torch.arange(6) % 3)
    loss.backward()
    for name, p in m.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_eval_batch_of_one() -> None:
    m = make(3).eval()
    x = torch.randn(1, 3, 28, 28)
    with torch.no_grad():
        out = m(x)
    assert out.shape == (1, 3) and torch.isfinite(out).all()
    torch.testing.assert_close(m(x), out)  # eval is deterministic (dropout off, running statistics)


def test_weights_decay_but_not_the_convolution_and_classifier_biases() -> None:
    """As the MATLAB release: L2 on every weight and BatchNorm's scale and offset, BiasL2Factor 0 on the biases;
    the grouped model hands the optimizer one flag per stacked parameter, in its parameter order."""
    from memix import models
    from memix.config import ModelParams

    net = STSTNet(num_classes=3)
    exempt = net.no_weight_decay()
    assert exempt == {f"stages.0.streams.{k}.conv.bias" for k in range(3)} | {"head.bias"}
    assert not any(".bn." in name for name in exempt)
    built = [models.build(ModelParams(name="ststnet"), in_chans=3, num_classes=3, img_size=28) for _ in range(2)]
    grouped = models.group(built)
    flags = grouped.decay_flags()
    names = [n for n, _ in built[0].named_parameters()]
    assert len(flags) == len(list(grouped.parameters())) == len(names)
    assert {n for n, f in zip(names, flags, strict=True) if not f} == {f"net.{n}" for n in exempt}
