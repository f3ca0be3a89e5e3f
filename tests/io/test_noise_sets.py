"""The folder of key-frame noise sets: the level list's record, and removing the sets of levels no longer listed
(only folders that are noise sets)."""

from __future__ import annotations

from pathlib import Path

from memix.io import noise_sets, shards


def _noise_set(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / noise_sets.INFO_FILE).write_text("{}")
    (folder / shards.MANIFEST).write_text("{}")
    return folder


def test_levels_no_longer_listed_are_removed_and_nothing_else(tmp_path: Path) -> None:
    root = tmp_path / "keyframe_noise"
    for level in ("1", "2", "5", "10"):
        _noise_set(root / level)
    (root / "7").mkdir()  # a folder named like a level but no noise set: kept
    _noise_set(tmp_path / "elsewhere")
    (root / "03").symlink_to(tmp_path / "elsewhere")  # not a level's name, and a link: kept
    (root / "levels.json").write_text("{}")
    assert [p.name for p in noise_sets.unlisted(root, [2])] == ["1", "5", "10"]
    assert noise_sets.remove_unlisted(root, [2]) == [1, 5, 10]
    assert sorted(p.name for p in root.iterdir()) == ["03", "2", "7", "levels.json"]
    assert (tmp_path / "elsewhere" / noise_sets.INFO_FILE).is_file()
    assert noise_sets.remove_unlisted(tmp_path / "missing", []) == []


def test_the_level_record_is_sorted_and_names_the_rule() -> None:
    record = noise_sets.levels_record([5, 2], 3)
    assert record["levels"] == [2, 5] and record["seed"] == 3 and "[-n, n]" in record["rule"]


def test_without_levels_the_record_holds_no_seed_so_a_seed_change_reruns_no_training():
    """Every train stage depends on the folder levels.json lives in: with no level, its bytes must not move."""
    from memix.io import atomic

    assert atomic.json_bytes(noise_sets.levels_record([], 0)) == atomic.json_bytes(noise_sets.levels_record([], 7))
    assert atomic.json_bytes(noise_sets.levels_record([2], 0)) != atomic.json_bytes(noise_sets.levels_record([2], 7))
