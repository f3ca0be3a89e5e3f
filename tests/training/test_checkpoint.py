"""Checkpoints written in place: one state's worth of disk, a save cut short leaves no state rather than a torn one."""

from __future__ import annotations

import pytest
import torch

from memix.training import checkpoint


def state(value: float) -> dict:
    g = torch.Generator().manual_seed(int(value))
    return {
        "fingerprint": "abc", "epoch": int(value),
        "model": {"w": torch.full((3, 1000), value), "b": torch.arange(4.0) + value},
        "optimizer": {"state": {0: {"exp_avg": torch.full((3, 1000), -value)}}, "steps": [1, 2]},
        "rng": [{"data": g.get_state()}], "pair": (torch.ones(2), "x"),
    }


def assert_same(a, b):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, list | tuple):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same(x, y)
    else:
        assert a == b


def test_round_trip_in_several_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint, "CHUNK_BYTES", 8000)  # a chunk per large tensor
    path = tmp_path / "group.pt"
    checkpoint.save(path, state(1.0))
    assert len(list(path.glob("g*-*.pt"))) >= 3
    assert_same(checkpoint.load(path), state(1.0))
    assert checkpoint.header(path) == {"fingerprint": "abc", "epoch": 1}


def test_a_new_save_replaces_the_old_state_in_place(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint, "CHUNK_BYTES", 8000)
    path = tmp_path / "group.pt"
    checkpoint.save(path, state(1.0))
    one = checkpoint.disk_bytes(path)
    sizes = []
    real_save = torch.save

    def watching(obj, f, *args, **kwargs):  # the folder's size at every file the save writes
        sizes.append(checkpoint.disk_bytes(path))
        return real_save(obj, f, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(torch, "save", watching)
        checkpoint.save(path, state(2.0))
    index = (path / checkpoint.INDEX).stat().st_size
    assert max(sizes) <= one - index  # never the old state beside the new one (a temp copy would be ~2x)
    assert_same(checkpoint.load(path), state(2.0))
    assert checkpoint.disk_bytes(path) == pytest.approx(one, rel=0.05)
    checkpoint.remove(path)
    assert not path.exists() and checkpoint.load(path) is None


def test_a_save_cut_short_leaves_no_state_not_a_torn_one(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint, "CHUNK_BYTES", 8000)
    path = tmp_path / "group.pt"
    checkpoint.save(path, state(1.0))
    calls = []
    real_save = torch.save

    def dying(obj, f, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # killed while writing the second chunk
            raise KeyboardInterrupt
        return real_save(obj, f, *args, **kwargs)

    with monkeypatch.context() as m, pytest.raises(KeyboardInterrupt):
        m.setattr(torch, "save", dying)
        checkpoint.save(path, state(2.0))
    assert list(path.glob("g2-*.pt"))  # a chunk of the cut-short save is there
    assert checkpoint.load(path) is None  # neither epoch 1's tensors mixed with epoch 2's, nor an error
    assert checkpoint.cut_short(path) and checkpoint.header(path) is None
    checkpoint.save(path, state(3.0))  # and the next save cleans up after it
    assert_same(checkpoint.load(path), state(3.0))
    assert sorted(p.name for p in path.iterdir()) == sorted(
        [checkpoint.INDEX] + [p.name for p in path.glob("g3-*.pt")]
    )


def test_a_damaged_chunk_is_named(tmp_path):
    path = tmp_path / "group.pt"
    checkpoint.save(path, state(1.0))
    chunk = next(path.glob("g*-*.pt"))
    chunk.write_bytes(chunk.read_bytes()[:100])
    with pytest.raises(ValueError, match=rf"{chunk.name}: checkpoint chunk missing or truncated.*--restart"):
        checkpoint.load(path)


@pytest.mark.parametrize(("failure", "said"), [
    (OSError(28, "No space left on device"), "the disk is full (No space left on device)"),
    (RuntimeError("[enforce fail at inline_container.cc:778] . PytorchStreamWriter failed writing file data/2: "
                  "file write failed"), "could not be written"),
])
def test_a_group_checkpoint_on_a_full_disk_names_it_and_the_free_space(tmp_path, monkeypatch, failure, said):
    """A training worker's in-place checkpoint save (no temp path) says what failed, naming the checkpoint."""
    def fail(*args, **kwargs):
        raise failure

    monkeypatch.setattr(checkpoint.torch, "save", fail)
    path = tmp_path / "group-00.pt"
    with pytest.raises(OSError) as caught:
        checkpoint.save(path, {"w": torch.zeros(3)})
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and said in message and "MiB free on" in message
