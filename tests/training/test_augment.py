"""Flow-aware augmentation: vectors transform with the field, and the face follows the same geometry."""

from __future__ import annotations

import math

import pytest
import torch

from memix.config import AugmentParams
from memix.training.augment import Transforms, apply_transforms, augment_batch, draw_transforms

S = 16


def _tf(angle: float = 0.0, shift: tuple[float, float] = (0.0, 0.0), flip: bool = False, b: int = 1) -> Transforms:
    return Transforms(
        flip=torch.full((b,), flip),
        angle=torch.full((b,), angle, dtype=torch.float64),
        shift=torch.tensor([shift] * b, dtype=torch.float64),
    )


def _coords() -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre offsets from the image centre (x right, y down)."""
    c = torch.arange(S) + 0.5 - S / 2
    ys, xs = torch.meshgrid(c, c, indexing="ij")
    return xs, ys


def _interior(t: torch.Tensor, margin: int = 4) -> torch.Tensor:
    return t[..., margin:-margin, margin:-margin]


def test_flip_mirrors_field_and_negates_u_only() -> None:
    x = torch.randn(16, 3, S, S, generator=torch.Generator().manual_seed(0))
    params = AugmentParams(flip=True, rotate_deg=0.0, translate_frac=0.0)
    out, _ = augment_batch(x, torch.Generator().manual_seed(1), params)
    flipped = out[:, 1].ne(x[:, 1]).flatten(1).any(1)
    assert 0 < int(flipped.sum()) < 16
    assert torch.equal(out[flipped, 0], -x[flipped, 0].flip(-1))
    assert torch.equal(out[flipped, 1], x[flipped, 1].flip(-1))
    assert torch.equal(out[flipped, 2], x[flipped, 2].flip(-1))
    assert torch.equal(out[~flipped], x[~flipped])


def test_flip_twice_is_identity() -> None:
    x = torch.randn(8, 3, S, S, generator=torch.Generator().manual_seed(0))
    tf = draw_transforms(8, torch.Generator().manual_seed(3), AugmentParams(rotate_deg=0, translate_frac=0), x.device)
    once, _ = apply_transforms(x, tf)
    twice, _ = apply_transforms(once, tf)
    assert not torch.equal(once, x)
    assert torch.equal(twice, x)


def test_rotating_a_constant_field_by_90_degrees_rotates_its_vector() -> None:
    x = torch.zeros(1, 3, S, S)
    x[:, 0] = 1.0  # pointing right
    x[:, 2] = 0.7  # strain: a scalar, only moves
    out, _ = apply_transforms(x, _tf(angle=math.pi / 2))
    # +90 deg in image axes (y down) turns "right" into "down"
    torch.testing.assert_close(out[0, 0], torch.zeros(S, S), atol=1e-5, rtol=0)
    torch.testing.assert_close(out[0, 1], torch.ones(S, S), atol=1e-5, rtol=0)
    torch.testing.assert_close(out[0, 2], torch.full((S, S), 0.7), atol=1e-5, rtol=0)


def test_rotation_moves_content_the_way_it_turns_vectors() -> None:
    x = torch.zeros(1, 2, S, S)
    x[0, 0, 8, 12] = 1.0  # a rightward bump at offset (x, y) = (4.5, 0.5) from the centre
    out, _ = apply_transforms(x, _tf(angle=math.pi / 2))
    bump = out[0].abs().sum(0)
    assert divmod(int(bump.argmax()), S) == (12, 7)  # offset (-0.5, 4.5): now below the centre
    torch.testing.assert_close(out[0, :, 12, 7], torch.tensor([0.0, 1.0]), atol=1e-5, rtol=0)


@pytest.mark.parametrize("angle_deg", [-30.0, 7.0, 45.0])
def test_rotation_leaves_radial_and_curl_fields_unchanged(angle_deg: float) -> None:
    """Radial and swirl fields are rotation-invariant: only a correct grid + vector rotation keeps them."""
    xs, ys = _coords()
    radial = torch.stack([xs, ys])[None]
    swirl = torch.stack([-ys, xs])[None]
    for field in (radial, swirl):
        out, _ = apply_transforms(field, _tf(angle=math.radians(angle_deg)))
        torch.testing.assert_close(_interior(out), _interior(field), atol=1e-4, rtol=0)


def test_translation_moves_the_field_not_its_values() -> None:
    xs, _ = _coords()
    x = torch.stack([torch.full((S, S), 2.0), torch.full((S, S), -1.0), xs])[None]
    out, _ = apply_transforms(x, _tf(shift=(0.25, 0.0)))  # 4 pixels right
    torch.testing.assert_close(out[0, :2, :, 4:], x[0, :2, :, 4:], atol=1e-5, rtol=0)  # values unchanged
    torch.testing.assert_close(out[0, 2, :, 4:], x[0, 2, :, :-4], atol=1e-5, rtol=0)  # content shifted
    torch.testing.assert_close(out[0, :, :, :4], torch.zeros(3, S, 4), atol=1e-6, rtol=0)


def test_face_gets_the_same_geometric_transform() -> None:
    g = torch.Generator().manual_seed(0)
    face = torch.rand(6, S, S, generator=g)
    x = torch.cat([torch.randn(6, 2, S, S, generator=g), face[:, None]], 1)  # strain channel = face copy
    params = AugmentParams(flip=True, rotate_deg=20.0, translate_frac=0.2)
    out, face_out = augment_batch(x, torch.Generator().manual_seed(4), params, face=face)
    assert face_out.shape == face.shape
    assert not torch.allclose(face_out, face)
    torch.testing.assert_close(face_out, out[:, 2], atol=1e-6, rtol=0)


def test_uint8_face_keeps_its_dtype_and_shape() -> None:
    face = torch.randint(0, 256, (4, 1, S, S), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    x = torch.randn(4, 2, S, S)
    _, face_out = augment_batch(x, torch.Generator().manual_seed(0), AugmentParams(), face=face)
    assert face_out.dtype == torch.uint8 and face_out.shape == face.shape
    # same draws on the same face as float: the uint8 result is the float one rounded to nearest, clamped to 0..255
    _, float_out = augment_batch(x, torch.Generator().manual_seed(0), AugmentParams(), face=face.float())
    assert not torch.equal(float_out, float_out.round())  # resampled: fractions exist, so rounding matters
    assert ((float_out - float_out.floor()) > 0.5).any()  # and some round up (truncation would differ)
    assert torch.equal(face_out, float_out.round().clamp(0, 255).to(torch.uint8))


def test_draws_are_seeded_and_bounded() -> None:
    params = AugmentParams(rotate_deg=10.0, translate_frac=0.1)
    x = torch.randn(64, 2, S, S)
    a, _ = augment_batch(x, torch.Generator().manual_seed(9), params)
    b, _ = augment_batch(x, torch.Generator().manual_seed(9), params)
    assert torch.equal(a, b)
    tf = draw_transforms(1000, torch.Generator().manual_seed(0), params, x.device)
    assert tf.angle.abs().max() <= math.radians(10.0) and tf.angle.abs().max() > math.radians(9.0)
    assert tf.shift.abs().max() <= 0.1
    assert 0.4 < tf.flip.float().mean() < 0.6
    assert not draw_transforms(100, torch.Generator(), AugmentParams(flip=False), x.device).flip.any()


def test_bad_shapes_are_named() -> None:
    with pytest.raises(ValueError, match="flow batch must be float"):
        augment_batch(torch.randn(2, 1, S, S), torch.Generator(), AugmentParams())
    with pytest.raises(ValueError, match="face batch must be"):
        augment_batch(torch.randn(2, 2, S, S), torch.Generator(), AugmentParams(), face=torch.rand(3, S, S))


def test_images_only_move_flips_and_rotations_leave_their_values_alone() -> None:
    """The onset/apex faces a network like MMNet takes are images: no channel is negated or turned like (u, v)."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(6, 2, S, S, generator=g)
    tf = draw_transforms(6, torch.Generator().manual_seed(2), AugmentParams(flip=True, rotate_deg=20.0,
                                                                             translate_frac=0.1), x.device)
    assert tf.flip.any() and (tf.angle != 0).all()
    images, _ = apply_transforms(x, tf, vectors=False)
    flow, _ = apply_transforms(x, tf)
    for c in range(2):  # each channel transformed as a face is: the same geometry, values only resampled
        _, alone = apply_transforms(torch.zeros(6, 2, S, S), tf, face=x[:, c])
        torch.testing.assert_close(images[:, c], alone, atol=1e-6, rtol=0)
    assert not torch.allclose(images, flow)  # as flow, u would be negated and (u, v) turned
