"""Calibrate the synthetic default on the no-mixing baseline alone: train ``none`` under LOSO with some params
changed and print its last-epoch training accuracy, test accuracy (the honest ``last`` rule, pooled over folds)
and the time it took, one row per setting, so a setting is chosen without looking at any mixing method.

    python benchmarks/calibrate.py --set train.epochs=80 model.embed_dim=32 --set train.augment.flip=false

Each ``--set`` group is one row (dotted keys into the params file, YAML values). Uses the flow set the pipeline
already made (``data/processed/flow``); the training bytes are the train stage's own (same code path).
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def with_overrides(params: dict, overrides: list[str]) -> dict:
    """A copy of ``params`` with each ``a.b.c=value`` applied (the value parsed as YAML)."""
    out = yaml.safe_load(yaml.safe_dump(params))
    for item in overrides:
        key, _, value = item.partition("=")
        node = out
        *parents, leaf = key.split(".")
        for name in parents:
            node = node[name]
        if leaf not in node:
            raise SystemExit(f"--set {item}: no key {key!r} in the params file")
        node[leaf] = yaml.safe_load(value)
    return out


def last_epoch(curves: Path) -> tuple[float, float, float, float]:
    """(train acc mean, train acc std, test acc mean, test acc std) over seeds at each seed's last epoch, in %."""
    import numpy as np

    rows = list(csv.DictReader(curves.open()))
    last: dict[str, dict] = {}
    for row in rows:
        if row["seed"] not in last or int(row["epoch"]) > int(last[row["seed"]]["epoch"]):
            last[row["seed"]] = row
    train = np.array([float(r["train_accuracy"]) for r in last.values()]) * 100
    test = np.array([float(r["test_accuracy"]) for r in last.values()]) * 100
    return train.mean(), train.std(), test.mean(), test.std()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--params", default=str(ROOT / "params.yaml"), help="params file to start from (default: ROOT's)")
    p.add_argument("--set", action="append", nargs="+", default=[], metavar="KEY=VALUE",
                   help="one row's changes; repeat --set for more rows (none: the params file as it is)")
    p.add_argument("--seeds", type=int, nargs="+", help="seeds (default: the params file's compare.seeds)")
    p.add_argument("--flow", default=str(ROOT / "data/processed/flow"), help="flow set (default: %(default)s)")
    args = p.parse_args()
    base = yaml.safe_load(Path(args.params).read_text())
    print("| change | baseline train acc (last epoch) | baseline test acc (last) | time |")
    print("|---|---|---|---|")
    for overrides in args.set or [[]]:
        with tempfile.TemporaryDirectory() as tmp:
            params = Path(tmp) / "params.yaml"
            params.write_text(yaml.safe_dump(with_overrides(base, overrides), sort_keys=False))
            cmd = [sys.executable, str(ROOT / "stages/train.py"), "--params", str(params), "--method", "none",
                   "--flow", args.flow, "--out", str(Path(tmp) / "train"), "--restart", "-q"]
            if args.seeds:
                cmd += ["--seeds", *map(str, args.seeds)]
            start = time.perf_counter()
            done = subprocess.run(cmd, cwd=tmp, stderr=subprocess.PIPE, text=True)
            if done.returncode:
                sys.stderr.write(done.stderr[-4000:])
                raise SystemExit(f"training failed for {' '.join(overrides) or 'the params file as it is'}")
            seconds = time.perf_counter() - start
            tr, tr_sd, te, te_sd = last_epoch(Path(tmp) / "train/curves.csv")
        print(f"| {' '.join(overrides) or '(as is)'} | {tr:.1f} % ± {tr_sd:.1f} | {te:.1f} % ± {te_sd:.1f} | "
              f"{seconds:.0f} s |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
