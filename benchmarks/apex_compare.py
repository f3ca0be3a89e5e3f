"""Recognition with the annotated, the middle and the spotted apex on the same folds: ingest, faces, flow, LOSO
training and evaluation of one method once per ``dataset.apex`` setting, then the paired bootstrap over test
subjects of each setting minus ``annotated`` (the comparison table's own interval, memix.evaluation.stats).

    python benchmarks/apex_compare.py                      # the pipeline's synthetic data, baseline, compare.seeds
    python benchmarks/apex_compare.py --method memix --seeds 0 1 2

Uses the synthetic data the pipeline already made (``dvc repro synth``), the params file's other values, and the
stage scripts themselves (same code path, same bytes as ``dvc repro`` would give with that ``dataset.apex``).
Writes under ``--work`` (a temp folder by default); prints one table. The spotting error itself is
``benchmarks/spotting.py``'s.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from memix.evaluation import stats  # noqa: E402

SETTINGS = ("annotated", "middle", "spotted")


def stage(script: str, params: Path, *args: str) -> None:
    cmd = [sys.executable, str(ROOT / "stages" / f"{script}.py"), "--params", str(params), "-q", *args]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")


def run_setting(base: dict, setting: str, method: str, seeds: list[int], work: Path) -> Path:
    """Every stage from ingest to evaluate with ``dataset.apex: setting``; returns the evaluation folder."""
    folder = work / setting
    folder.mkdir(parents=True, exist_ok=True)
    params = yaml.safe_load(yaml.safe_dump(base))
    params["dataset"]["apex"] = setting
    params["compare"]["seeds"] = seeds
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    stage("ingest", path, "--out", str(folder / "interim"))
    stage("faces", path, "--clips", str(folder / "interim" / "clips.parquet"), "--out", str(folder / "faces"))
    stage("flow", path, "--faces", str(folder / "faces"), "--out", str(folder / "flow"),
          "--montage", str(folder / "montage.png"))
    stage("train", path, "--method", method, "--flow", str(folder / "flow"), "--out", str(folder / "train"))
    stage("evaluate", path, "--method", method, "--train-dir", str(folder / "train"), "--out", str(folder / "eval"))
    return folder / "eval"


def confusions(selected: pd.DataFrame, subjects: list[str], seeds: list[int], k: int) -> np.ndarray:
    """(seeds, subjects, K, K) of the ``last`` rule's selected predictions."""
    last = selected[selected["selection"] == "last"] if "selection" in selected.columns else selected
    seed_idx = last["seed"].map({s: i for i, s in enumerate(seeds)}).to_numpy()
    subj_idx = last["subject"].map({s: i for i, s in enumerate(subjects)}).to_numpy()
    return stats.subject_confusions(seed_idx, subj_idx, last["true"].to_numpy(), last["pred"].to_numpy(),
                                    len(seeds), len(subjects), k)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--params", default=str(ROOT / "params.yaml"), help="params file (default: %(default)s)")
    p.add_argument("--method", default="none", help="mixing method trained (default: %(default)s)")
    p.add_argument("--seeds", type=int, nargs="+", help="training seeds (default: compare.seeds)")
    p.add_argument("--settings", nargs="+", choices=SETTINGS, default=list(SETTINGS),
                   help="dataset.apex settings; the first is the reference (default: %(default)s)")
    p.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples (default: %(default)s)")
    p.add_argument("--work", help="working folder (default: a temp folder, removed afterwards)")
    args = p.parse_args(argv)
    base = yaml.safe_load(Path(args.params).read_text())
    seeds = list(args.seeds or base["compare"]["seeds"])
    with tempfile.TemporaryDirectory(prefix="apex-compare-") as tmp:
        work = Path(args.work or tmp)
        evals, times = {}, {}
        for setting in args.settings:
            start = time.perf_counter()
            evals[setting] = run_setting(base, setting, args.method, seeds, work)
            times[setting] = time.perf_counter() - start
        selected = {s: pd.read_parquet(folder / "selected.parquet") for s, folder in evals.items()}
        ref = args.settings[0]
        subjects = sorted(set(selected[ref]["subject"].astype(str)))
        k = len(json.loads((evals[ref] / "metrics.json").read_text())["classes"])
        counts = stats.resample_counts(len(subjects), args.resamples, 0)
        cms = {s: confusions(df.astype({"subject": str}), subjects, seeds, k) for s, df in selected.items()}
        print(f"method {args.method}, seeds {seeds}, {len(subjects)} test subjects, rule last; "
              f"differences to {ref}: paired bootstrap over subjects, {args.resamples} resamples, 95 %")
        print(f"{'apex':<10} {'Acc':>8} {'UF1':>8} {'UAR':>8}   {'dAcc [95 % CI]':<26} {'dUF1 [95 % CI]':<26} time")
        for setting in args.settings:
            point = stats.seed_mean_scores(cms[setting], np.ones((1, len(subjects)), dtype=np.int64))
            cells = [f"{float(point[m][0]) * 100:8.2f}" for m in ("accuracy", "uf1", "uar")]
            diffs = ["", ""]
            if setting != ref:
                interval = stats.paired_bootstrap(cms[setting], cms[ref], counts)
                diffs = [f"{interval[m].delta * 100:+6.2f} [{interval[m].low * 100:+6.2f}, "
                         f"{interval[m].high * 100:+6.2f}]" for m in ("accuracy", "uf1")]
            print(f"{setting:<10} {' '.join(cells)}   {diffs[0]:<26} {diffs[1]:<26} {times[setting]:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
