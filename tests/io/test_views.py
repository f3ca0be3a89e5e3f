"""The region views (memix.io.views): HTNet's four blocks land on the eyes and mouth corners of synthetic faces
through the whole chain (faces stage points, affine, flow pixels, 28 px), and CausalNet's whole-sequence input."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from flowsets import make_flow_set, make_region_flow_set

from memix.config import FlowParams
from memix.io import flowset, shards, views
from memix.preprocess import clip_align, faces, flow
from memix.preprocess.landmarks import LandmarkDetector
from memix.synth.aus import AUS, au_field
from memix.synth.identity import load_base_face, make_subject
from memix.training.folds import fold_stats, make_folds

FACE_SIZE, FLOW_SIZE = 96, 56
BLOCKS = {"eye_left": (0, 0), "mouth_left": (0, 1), "eye_right": (1, 0), "mouth_right": (1, 1)}
"""Where each block sits in the 28 px region image (block row, block column)."""


@pytest.fixture(scope="module")
def subject(face_model_path: Path):
    base = load_base_face(face_model_path)
    return make_subject(base, 1, 200, 130, np.random.default_rng(3))


def _moved(subject, au: int, side: str, px: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """The subject's neutral face (onset) and the same face with one AU on one side (apex), uint8 BGR."""
    shape = subject.image.shape[:2]
    field = au_field(AUS[au], side, subject.landmarks, shape) * np.float32(px)
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    onset = (subject.image * 255).round().astype(np.uint8)
    apex = cv2.remap(onset, xs - field[..., 0], ys - field[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return cv2.cvtColor(onset, cv2.COLOR_RGB2BGR), cv2.cvtColor(apex, cv2.COLOR_RGB2BGR)


def _regions(subject, face_model_path: Path, tmp_path: Path, au: int, side: str) -> np.ndarray:
    """The clip's regions input (3, 28, 28), made as the pipeline makes it, for one AU on one side."""
    onset, apex = _moved(subject, au, side)
    cv2.imwrite(str(tmp_path / "onset.png"), onset)
    cv2.imwrite(str(tmp_path / "apex.png"), apex)
    with LandmarkDetector(face_model_path, max_faces=faces.MAX_FACES) as det:
        aligned = clip_align.align_clip(det, tmp_path / "onset.png", tmp_path / "apex.png", "clip", FACE_SIZE, 0.25)
    assert aligned is not None
    params = FlowParams(size=FLOW_SIZE, workers=1)
    tensor = flow.clip_tensor(params, aligned.onset, aligned.apex).tensor
    points = flow.points_in_tensor(faces.used_landmarks(aligned.mesh, aligned.left, aligned.right),
                                   aligned.affine.ravel(), FACE_SIZE, FLOW_SIZE)
    image = views.clip_input("regions", tensor, points, aligned.onset, aligned.apex).astype(np.float64)
    assert image.shape == (3, views.REGION_SIZE, views.REGION_SIZE)
    return image


@pytest.mark.parametrize(
    ("au", "side", "block"),
    [
        (12, "R", "mouth_left"),  # lip corner puller on the subject's right = the image's left mouth corner
        (12, "L", "mouth_right"),
        (4, "R", "eye_left"),  # brow lowerer: just above the image's left eye
        (4, "L", "eye_right"),
    ],
)
def test_each_block_is_centred_on_its_part_of_the_face(subject, face_model_path, tmp_path, au, side, block):
    """One AU on one side of a synthetic face moves one place: the block cut around that place holds the motion's
    peak near its centre, nearer than any other block does (the blocks overlap at memix's face crop: the points,
    the affine, the flow's pixels, the 28 px centres and the block layout all have to be right for this)."""
    image = _regions(subject, face_model_path, tmp_path, au, side)
    mag = np.hypot(image[0], image[1])
    peak = mag.max()
    off_centre = {}
    for name, (r, c) in BLOCKS.items():
        part = mag[r * 14 : (r + 1) * 14, c * 14 : (c + 1) * 14]
        y, x = np.unravel_index(part.argmax(), part.shape)
        off_centre[name] = float(np.hypot(y - 6.5, x - 6.5)) if part.max() >= 0.8 * peak else np.inf
    assert min(off_centre, key=off_centre.get) == block, off_centre
    assert off_centre[block] <= 3.0, off_centre


def test_block_centres_are_clamped_and_truncated_as_the_release_does():
    side = views.REGION_SIZE  # points already in 28 px pixels: no scaling
    pts = np.zeros((1, 5, 2))
    pts[0, 0] = (3.9, 10.99)  # eye_left: x clamped up to 7, y truncated to 10
    pts[0, 3] = (21.7, 25.0)  # mouth_left: both clamped down to 21
    pts[0, 1] = (14.5, 7.2)  # eye_right
    pts[0, 4] = (8.0, 20.999)  # mouth_right
    centres = views.block_centres(pts, side)
    assert centres[0].tolist() == [[7, 10], [21, 21], [14, 7], [8, 20]]


def test_compose_puts_each_block_in_its_quarter():
    rows, cols = np.mgrid[0:28, 0:28]
    image = np.stack([rows, cols]).astype(np.float32)[None]  # each pixel holds its own (row, col)
    centres = np.array([[[7, 7], [20, 9], [10, 18], [21, 21]]])  # (x, y) per block, REGION_POINTS order
    out = views.compose_regions(image, centres)
    for b, (x, y) in enumerate(centres[0]):
        r, c = divmod(b, 2)
        block = out[0, :, r * 14 : (r + 1) * 14, c * 14 : (c + 1) * 14]
        assert block[0, 0, 0] == y - 7 and block[1, 0, 0] == x - 7  # rows by y, columns by x
        assert block[0, -1, 0] == y + 6 and block[1, 0, -1] == x + 6


def test_direction_map_is_the_hue_of_the_normalised_angle():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(2, 3, 28, 28))
    out = views.direction_map(f)
    assert out.shape == (2, 3, 28, 28) and (out[:, 0] == 0).all()  # angle in 0..90 degrees: no blue
    for i in range(2):
        u, v = ((f[i, c] - f[i, c].min()) / np.ptp(f[i, c]) for c in (0, 1))
        hsv = cv2.cvtColor(np.ascontiguousarray(out[i].transpose(1, 2, 0).astype(np.uint8)), cv2.COLOR_BGR2HSV)
        expected = np.degrees(np.arctan2(v, u)) / 2
        assert np.abs(hsv[..., 0].astype(float) - expected).max() <= 1.01
        assert (hsv[..., 1:] == 255).all()


def test_sequence_view_stacks_four_region_images_and_normalises_per_fold(tmp_path):
    src = make_region_flow_set(tmp_path / "flow")
    data = views.read(src, inputs="sequence")
    assert data.flow.shape[1:] == (12, 28, 28) and data.size == 28
    assert data.channels == views.input_channels("sequence", ["u", "v", "strain"])
    regions = views.read(src, inputs="regions")
    np.testing.assert_array_equal(data.flow[:, :3], regions.flow)  # the onset -> apex part is HTNet's input
    np.testing.assert_array_equal(data.flow[:, 6], 0)  # the direction map's B channel
    mean, std = fold_stats(data.index, make_folds(data.index)[0], data.channels)
    assert std[6] == 1.0 and mean[6] == 0.0 and (std > 0).all()  # a constant channel normalises to 0


def test_views_name_what_is_missing(tmp_path):
    with pytest.raises(ValueError, match="no column landmarks"):
        views.read(make_flow_set(tmp_path / "flow"), inputs="regions")
    src = make_region_flow_set(tmp_path / "regions")
    index, arrays = shards.load(src)
    del arrays["flow_offset"]
    flowset.write(tmp_path / "no_offset", index.drop(columns=["shard", "row"]), {k: np.array(v) for k, v in
                  arrays.items()}, {"channels": ["u", "v", "strain"]}, shard_mb=64)
    with pytest.raises(ValueError, match=r"flow.pairs: \[onset_apex, apex_offset\]"):
        views.read(tmp_path / "no_offset", inputs="sequence")


def test_clip_input_is_the_view_of_a_one_clip_set(tmp_path):
    src = make_region_flow_set(tmp_path / "flow")
    data = views.read(src, inputs="sequence")
    raw = flowset.read(src)
    _, arrays = shards.load(src)
    one = views.clip_input("sequence", np.array(raw.flow[2]), np.reshape(raw.index["landmarks"].iloc[2], (5, 2)),
                           raw.onset[2], arrays["apex"][2], np.array(arrays["flow_offset"][2]))
    np.testing.assert_array_equal(one, data.flow[2])


def test_only_the_constant_by_construction_channels_may_have_no_spread(tmp_path):
    """The direction map's B channel normalises to 0; a flow channel without spread is still degenerate data."""
    data = views.read(make_region_flow_set(tmp_path / "flow"), inputs="sequence")
    fold = make_folds(data.index)[0]
    index = data.index.copy()
    index["sum_v"], index["sumsq_v"] = 0.0, 0.0  # v identically 0 over every clip
    with pytest.raises(ValueError, match="degenerate channel statistics"):
        fold_stats(index, fold, data.channels)
