"""AMAN (memix.models.arch.aman): shapes, the released parameter count, agreement with an independent transcription of
the release's forward (weimengting/AMAN main/network.py), manifold mixing, gradients, batch-size-1 eval."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F

from memix import mixing, models
from memix.models import registry
from memix.models.arch import aman
from memix.models.arch.aman import AMAN

torch.set_num_threads(1)

FRAMES, LEVELS, SIDE = 2, 3, 32  # tiny image config: in_chans = 3 * 2 * 3 = 18
FEAT_SIDE = 4  # tiny trunk features (B, F, K, 256, 4, 4)


@dataclass
class Plan:
    block: int
    lam: float | torch.Tensor
    perm: torch.Tensor


def _n_trainable(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters() if p.requires_grad)


def _tiny(num_classes: int = 5, seed: int = 0, **kw) -> AMAN:
    torch.manual_seed(seed)
    return AMAN(num_classes, in_chans=3 * FRAMES * LEVELS, img_size=SIDE, num_levels=LEVELS, **kw)


def _features(b: int = 4, seed: int = 1, frames: int = FRAMES, levels: int = LEVELS) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, frames, levels, 256, FEAT_SIDE, FEAT_SIDE, generator=g)


def _images(b: int = 3, seed: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, 3 * FRAMES * LEVELS, SIDE, SIDE, generator=g)


def _release_state(model: AMAN) -> dict[str, torch.Tensor]:
    """The head's weights under the release's names (layer4.*, alpha.0.*, beta.0.*, pred_fc.*), perturbed BN stats."""
    sd = {}
    for k, v in model.state_dict().items():
        for ours, theirs in (("stages.1.layer4.", "layer4."), ("stages.2.score.", "alpha."),
                             ("stages.3.score.", "beta."), ("head.", "pred_fc.")):
            if k.startswith(ours):
                v = v.clone()
                if k.endswith("running_mean"):
                    v.normal_(0.0, 0.1)
                elif k.endswith("running_var"):
                    v.uniform_(0.5, 1.5)
                sd[theirs + k[len(ours):]] = v
    return sd


# --- an independent reference: the release's AMAN.forward written out with torch.nn.functional ---

def _ref_bn(x, sd, p, training):
    return F.batch_norm(x, sd[p + "running_mean"], sd[p + "running_var"], sd[p + "weight"], sd[p + "bias"],
                        training=training, momentum=0.1, eps=1e-5)


def _ref_block(x, sd, p, stride, training):
    out = F.relu(_ref_bn(F.conv2d(x, sd[p + "conv1.weight"], stride=stride, padding=1), sd, p + "bn1.", training))
    out = _ref_bn(F.conv2d(out, sd[p + "conv2.weight"], padding=1), sd, p + "bn2.", training)
    if p + "downsample.0.weight" in sd:
        x = _ref_bn(F.conv2d(x, sd[p + "downsample.0.weight"], stride=stride), sd, p + "downsample.1.", training)
    return F.relu(out + x)


def _ref_forward(x, sd, training=False):
    """x: (B, F, K, 256, h, w). Frames outer, levels inner, layer4 on one (frame, level) slot at a time."""
    vms, betas = [], []
    for j in range(x.size(1)):
        vs, alphas = [], []
        for i in range(x.size(2)):
            f = _ref_block(x[:, j, i], sd, "layer4.0.", 2, training)
            f = _ref_block(f, sd, "layer4.1.", 1, training).mean(dim=(2, 3))
            vs.append(f)
            alphas.append(torch.sigmoid(F.linear(f, sd["alpha.0.weight"], sd["alpha.0.bias"])))
        a, v = torch.stack(alphas, 2), torch.stack(vs, 2)
        vm = (v * a).sum(2) / a.sum(2)
        vms.append(vm)
        betas.append(torch.sigmoid(F.linear(vm, sd["beta.0.weight"], sd["beta.0.bias"])))
    b, vm = torch.stack(betas, 0), torch.stack(vms, 0)
    return F.linear((vm * b).sum(0) / b.sum(0), sd["pred_fc.weight"], sd["pred_fc.bias"])


# --- tests ---

@pytest.mark.parametrize("num_classes", [3, 5, 7])
def test_output_shape_features_and_images(num_classes):
    model = _tiny(num_classes).eval()
    with torch.no_grad():
        assert model(_features(2)).shape == (2, num_classes)
        assert model(_images(2)).shape == (2, num_classes)
        unstacked = _images(2).reshape(2, FRAMES, LEVELS, 3, SIDE, SIDE)
        torch.testing.assert_close(model(unstacked), model(_images(2)))
        # features with other frame / level counts are accepted, as in the release
        assert model(_features(2, frames=3, levels=1)).shape == (2, num_classes)


def test_default_config_matches_release_layout():
    model = AMAN(5)
    assert (model.num_frames, model.num_levels, model.in_chans, model.img_size) == (11, 9, 297, 224)
    with pytest.raises(ValueError):
        model(torch.zeros(1, 12, 224, 224))
    with pytest.raises(ValueError):
        AMAN(5, in_chans=296)


def test_trainable_params_equal_release():
    # Released counts: weimengting/AMAN@f4e3143 main/network.py AMAN(num_classes) instantiated and its requires_grad
    # parameters summed (= layer4 8,393,728 + alpha 513 + beta 513 + pred_fc 513 * C); 5 classes is the release's
    # SAMM default (main/config.py). The frozen ResNet-18 conv1..layer3 trunk adds 2,782,784.
    assert aman.RELEASED["trainable_params"] == 8_397_319
    assert _n_trainable(AMAN(aman.RELEASED["num_classes"])) == 8_397_319
    assert _n_trainable(AMAN(3)) == 8_396_293
    full = AMAN(5, train_trunk=True)
    assert _n_trainable(full) == 8_397_319 + 2_782_784


def test_matches_release_forward_eval_and_train():
    torch.manual_seed(3)
    model = _tiny(5)
    sd = _release_state(model)
    model.load_release_state({"module." + k: v for k, v in sd.items()})
    x = _features(4)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), _ref_forward(x, {k: v.clone() for k, v in sd.items()}))
    # training mode: per-slot batch statistics and the F*K running-statistic updates in the release's order
    model.train()
    ref_sd = {k: v.clone() for k, v in sd.items()}
    with torch.no_grad():
        torch.testing.assert_close(model(x), _ref_forward(x, ref_sd, training=True))
    ours = model.state_dict()
    for k in ("layer4.0.bn1.running_mean", "layer4.1.bn2.running_var", "layer4.0.downsample.1.running_mean"):
        torch.testing.assert_close(ours["stages.1." + k], ref_sd[k])
    assert int(ours["stages.1.layer4.0.bn1.num_batches_tracked"]) == FRAMES * LEVELS


def test_frozen_trunk_stays_in_eval_and_loads_resnet_state():
    model = _tiny(5).train()
    assert not model.stages[0].trunk.training and model.stages[1].training
    torch.manual_seed(4)
    donor = {k: torch.randn_like(v) if v.is_floating_point() else v
             for k, v in model.stages[0].trunk.state_dict().items()}
    ckpt = {"module." + k: v for k, v in donor.items()}
    ckpt["module.layer4.0.conv1.weight"] = torch.zeros(1)
    ckpt["module.fc.weight"] = torch.zeros(1)
    model.load_trunk_state(ckpt)
    torch.testing.assert_close(model.stages[0].trunk.conv1.weight, donor["conv1.weight"])


def test_manifold_lam1_is_identity_and_lam0_is_permuted_input():
    model = _tiny(5).eval()
    x = _images(4)
    perm = torch.tensor([2, 0, 3, 1])
    with torch.no_grad():
        plain, permuted = model(x), model(x[perm])
        for block in range(5):  # 4 is past the last stage: clipped to 3
            torch.testing.assert_close(model(x, manifold=Plan(block, 1.0, perm)), plain)
            torch.testing.assert_close(model(x, manifold=Plan(block, 0.0, perm)), permuted, rtol=1e-4, atol=1e-5)
        lam = torch.tensor([1.0, 0.0, 1.0, 0.0])
        mixed = model(x, manifold=Plan(2, lam, perm))
        torch.testing.assert_close(mixed[0::2], plain[0::2])
        torch.testing.assert_close(mixed[1::2], permuted[1::2], rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError):
        model(x, manifold=Plan(-1, 0.5, perm))


def test_manifold_mixes_the_tensor_entering_the_stage():
    model = _tiny(5).eval()
    x, perm, lam = _features(4), torch.tensor([1, 2, 3, 0]), 0.3
    with torch.no_grad():
        h = model.stages[2](model.stages[1](x))  # (B, F, 512) entering frame attention (stage 3)
        expected = model.head(model.stages[3](lam * h + (1 - lam) * h[perm]))
        torch.testing.assert_close(model(x, manifold=Plan(3, lam, perm)), expected)
        # feature input skips stage 0: a mix at block 0 mixes the features entering stage 1
        f = lam * x + (1 - lam) * x[perm]
        torch.testing.assert_close(model(x, manifold=Plan(0, lam, perm)), model(f))


@pytest.mark.parametrize("train_trunk", [False, True])
def test_backward_finite_grads(train_trunk):
    model = _tiny(4, train_trunk=train_trunk).train()
    logits = model(_images(3), manifold=Plan(1, 0.6, torch.tensor([2, 0, 1])))
    F.cross_entropy(logits, torch.tensor([0, 1, 3])).backward()
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
        else:
            assert not train_trunk and name.startswith("stages.0.") and p.grad is None, name


def test_eval_batch_size_one():
    model = _tiny(3).eval()
    with torch.no_grad():
        out_img, out_feat = model(_images(1)), model(_features(1))
    assert out_img.shape == out_feat.shape == (1, 3)
    assert torch.isfinite(out_img).all() and torch.isfinite(out_feat).all()


@pytest.mark.parametrize("method", registry.architecture("aman").methods)
def test_one_training_step_with_each_mixing_method_defined_for_it(method):
    """AMAN is not fed by the pipeline yet (no magnification stage), but every mixing method defined for it trains it:
    the mixed batch goes through the network (manifold mixup between its stages), the loss on the mixed targets
    back-propagates, and one optimizer step changes the head and keeps it finite."""
    torch.manual_seed(0)
    frames, levels, size, classes = 2, 2, 32, 3
    net = models.NetModel(aman.AMAN(classes, in_chans=3 * frames * levels, img_size=size, num_levels=levels),
                          "aman", in_chans=3 * frames * levels, img_size=size)
    net.train()
    x = torch.randn(6, 3 * frames * levels, size, size)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    mixer = mixing.get(method, classes, patch_size=net.patch_size)
    mixer.fit_to_depth(net.depth)
    mixer.bind(y, x)
    plan = mixer.mix_inputs(x, y, torch.Generator().manual_seed(1))
    logits = net(plan.x, manifold=plan.manifold)
    loss = -(mixer.mix_targets(plan) * torch.log_softmax(logits, -1)).sum(-1).mean()
    if mixer.clean_loss:
        loss = loss + F.cross_entropy(net(x), y)
    head = net.net.head.weight.detach().clone()
    opt = torch.optim.RMSprop([p for p in net.parameters() if p.requires_grad], lr=1e-3)
    loss.backward()
    opt.step()
    assert torch.isfinite(loss) and not torch.equal(net.net.head.weight, head)
    assert all(torch.isfinite(p).all() for p in net.parameters())
