"""Fold groups and group checkpoints: the compute lost to padding, and what saving a group costs.

Usage:
  python benchmarks/bench_groups.py                  # params.yaml's default, 2 CPU workers
  python benchmarks/bench_groups.py --workers 1 --repeats 9

1. Padded share: of the rows a grouping computes (every step of a group is a full (G, batch) batch), the share that
   holds no clip, split into units sitting steps out (what grouping controls) and the last partial batch of each
   epoch; for groups cut in (seed, fold) order regardless of size (the old grouping) against
   ``memix.training.grouping.make_groups`` (units of similar size together), on the default's subjects (the synth
   plan's clips per subject, params.yaml's seeds, ``fold_batch: auto`` over ``--workers``) and on a CASME II-like
   size list (26 subjects with 2-39 clips, 3 seeds, batch 34, groups of 26 and 13).
2. Checkpoint of the default's largest group (built with ``GroupTrainer``, random flow): its size, the most disk it
   takes while a new save replaces the previous one, and the wall time of a save; for one file through a temp copy
   and a rename (the old way) against ``memix.training.checkpoint.save`` (chunks replaced in place).
Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_gpu import random_flow_set  # noqa: E402

from memix.config import load_params  # noqa: E402
from memix.synth.plan import clips_per_subject  # noqa: E402
from memix.training import checkpoint, grouping, loop  # noqa: E402
from memix.training.folds import Fold, make_folds  # noqa: E402

CASME2_LIKE = [9, 13, 7, 5, 19, 5, 9, 3, 15, 13, 10, 12, 8, 5, 3, 4, 39, 3, 16, 14, 2, 2, 12, 12, 7, 4]


def units_for(clips: list[int], seeds: list[int]) -> list[loop.Unit]:
    total = sum(clips)
    folds = [Fold(i, f"s{i:02d}", np.arange(total - n), np.arange(n)) for i, n in enumerate(clips)]
    return [loop.Unit(seed, fold) for seed in seeds for fold in folds]


def size_blind(units: list[loop.Unit], size: int) -> list[list[loop.Unit]]:
    """The old grouping: consecutive runs in (seed, fold) order, spread evenly."""
    n_groups = math.ceil(len(units) / size)
    base, extra = divmod(len(units), n_groups)
    groups, start = [], 0
    for g in range(n_groups):
        end = start + base + (1 if g < extra else 0)
        groups.append(units[start:end])
        start = end
    return groups


def shares(groups: list[list[loop.Unit]], batch: int) -> str:
    steps = [[grouping.steps_per_epoch(u, batch) for u in g] for g in groups]
    sizes = [[len(u.fold.train_rows) for u in g] for g in groups]
    padded, sat_out = grouping.padded_share(sizes, batch), grouping.sat_out_share(steps)
    return (f"groups {[len(g) for g in groups]}: padded {100 * padded:.1f} % = sat out {100 * sat_out:.1f} % "
            f"+ partial batches {100 * (padded - sat_out):.1f} %")


def padding(params, workers: int) -> None:
    clips = clips_per_subject(params.synth)
    seeds = list(params.compare.seeds)
    units = units_for(clips, seeds)
    batch = params.train.batch_size
    size = math.ceil(len(units) / max(1, min(workers, len(units))))
    print(f"padding, default ({len(clips)} subjects, {sum(clips)} clips, seeds {seeds}, batch {batch}, "
          f"groups of <= {size}):")
    print(f"  before (size-blind): {shares(size_blind(units, size), batch)}")
    print(f"  after (make_groups): {shares(grouping.make_groups(units, size, batch), batch)}")
    for size in (26, 13):
        casme = units_for(CASME2_LIKE, [0, 1, 2])
        print(f"padding, CASME II-like (26 subjects, 2-39 clips, 3 seeds, batch 34, groups of <= {size}):")
        print(f"  before (size-blind): {shares(size_blind(casme, size), 34)}")
        print(f"  after (make_groups): {shares(grouping.make_groups(casme, size, 34), 34)}")


def old_save(path: Path, state: dict, watch: bool = False) -> int:
    """One file through a temp copy and a rename; returns the disk in use just before the rename (when watched)."""
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    peak = sum(p.stat().st_size for p in path.parent.iterdir() if p.is_file()) if watch else 0
    os.replace(tmp, path)
    return peak


def new_save(path: Path, state: dict, watch: bool = False) -> int:
    """``checkpoint.save``; when watched, returns the most disk in use at the start and end of any file it writes."""
    if not watch:
        checkpoint.save(path, state)
        return 0
    seen = [0]
    real = torch.save

    def watching(obj, f, *args, **kwargs):
        seen.append(checkpoint.disk_bytes(path))
        real(obj, f, *args, **kwargs)
        seen.append(checkpoint.disk_bytes(path))

    torch.save = watching
    try:
        checkpoint.save(path, state)
    finally:
        torch.save = real
    return max(seen)


def checkpoint_cost(params, repeats: int) -> None:
    data = random_flow_set(params.synth.subjects, params.synth.clips, params.flow.size)
    folds = make_folds(data.index)
    units = [loop.Unit(seed, f) for seed in params.compare.seeds for f in folds]
    group = grouping.make_groups(units, math.ceil(len(units) / 2), params.train.batch_size)[0]
    trainer = loop.GroupTrainer(params, "memix", group, data, torch.device("cpu"))
    state = trainer._checkpoint_state(1)
    weights = sum(p.numel() for p in trainer.model.parameters())
    print(f"checkpoint of a default group ({len(group)} units, memix, {weights} weights in all):")
    with tempfile.TemporaryDirectory() as tmp:
        for name, save, target in (("before (temp file + rename)", old_save, Path(tmp) / "old" / "group.pt"),
                                   ("after (chunks in place)", new_save, Path(tmp) / "new" / "group.pt")):
            target.parent.mkdir()
            save(target, state)  # the previous checkpoint a save replaces
            peak = save(target, state, watch=True)
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                save(target, state)
                times.append(time.perf_counter() - start)
            size = checkpoint.disk_bytes(target)
            print(f"  {name}: state {size / 2**20:.2f} MiB on disk, peak {peak / 2**20:.2f} MiB "
                  f"({peak / size:.2f}x), save {1000 * statistics.median(times):.1f} ms (median of {repeats})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=REPO / "params.yaml")
    parser.add_argument("--workers", type=int, default=2, help="CPU worker processes fold_batch: auto splits over")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    params = load_params(args.params)
    torch.set_num_threads(1)
    padding(params, args.workers)
    checkpoint_cost(params, args.repeats)


if __name__ == "__main__":
    main()
