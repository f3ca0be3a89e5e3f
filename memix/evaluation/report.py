"""The mixup comparison: every method's pooled LOSO Acc, UF1 and UAR over seeds, differences to the baseline with
paired bootstrap intervals, provenance, and the files DVC shows.

Reads each method's ``reports/eval/<m>/`` (``metrics.json``, ``selected.parquet``) and writes into ``reports/``:

- ``mixup_table.md`` / ``.json`` / ``.png``: the table, two rules never mixed (the honest ``last`` rule and the
  ``oracle`` rule, per subject the best epoch chosen on the test subject, as published numbers were);
- ``summary.json``: a flat DVC metric, per method the seed mean of Acc, UF1 and UAR under each rule, rounded,
  so ``dvc exp show`` and ``dvc metrics diff`` give one short row per experiment;
- ``curves.csv``: per method and epoch the seed mean of its training curves (long format, one ``method``
  column), which the top-level ``plots`` of ``dvc.yaml`` overlay in one chart.

Provenance holds only what DVC tracks as this stage's inputs (params, the ingest report, the evaluations), so
equal inputs give equal bytes. The git revision is left out on purpose: written into a cached output it would
change the table on every commit while no input changed, and no commit can hold its own hash; the commit that
holds this table's ``dvc.lock`` identifies the code, and ``dvc.lock`` pins the md5 of every file each stage ran.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from memix.config import Params, dump_params, method_title
from memix.evaluation import metrics, selection, stats
from memix.io import atomic
from memix.plots import save_png

# Published CASME II 5-class LOSO figures (MEMix paper's README), obtained with test-set epoch selection.
PAPER_CASME2 = {
    "none": (73.98, 0.7200),
    "mixup": (82.11, 0.8145),
    "cutmix": (82.93, 0.8133),
    "manifold_mixup": (83.33, 0.8179),
    "transmix": (83.74, 0.8048),
    "remix": (82.52, 0.8186),
    "mixaugment": (83.33, 0.8254),
    "memix": (85.37, 0.8365),
}

RESULT_SECTIONS = ("dataset", "synth", "faces", "flow", "model", "train", "mixing", "eval", "compare")
"""The params sections the results depend on: the table lists their values that differ from the defaults
(compare depends on all of them in dvc.yaml, so the list is never stale)."""

RUN_ONLY = ("faces.model_source", "flow.workers", "train.workers", "train.executor", "train.ray_gpus")
"""Params that choose where or how a stage runs, not what it computes (the face model is sha256-pinned, and the
outputs are the same for any worker count or executor): never listed as a difference."""

LABELS = {"accuracy": "Acc (%)", "uf1": "UF1", "uar": "UAR"}
SHORT = {"accuracy": "acc", "uf1": "uf1", "uar": "uar"}
SCALE = {"accuracy": (100.0, 2), "uf1": (1.0, 4), "uar": (1.0, 4)}
CURVES = ("test_accuracy", "train_loss", "train_accuracy")


@dataclass
class MethodEval:
    """One method's evaluation as compare reads it."""

    name: str
    content: dict[str, Any]
    selected: pd.DataFrame
    path: Path

    def per_seed(self, rule: str, metric: str) -> list[float]:
        src = selection.source(rule, metric)
        try:
            return [float(s[src][metric]) for s in self.content["per_seed"]]
        except (KeyError, TypeError) as err:
            raise ValueError(f"{self.path}: missing metric {src}/{metric} ({err})") from None

    def per_dataset(self, rule: str, metric: str, dataset: str) -> list[float]:
        src = selection.source(rule, metric)
        try:
            return [float(s[src]["per_dataset"][dataset][metric]) for s in self.content["per_seed"]]
        except (KeyError, TypeError) as err:
            raise ValueError(f"{self.path}: missing metric {src}/per_dataset/{dataset}/{metric} ({err})") from None


@dataclass
class Row:
    """One method under one rule: spreads over seeds, and (not for the baseline) its differences."""

    spread: dict[str, stats.Spread]
    delta: dict[str, float] = field(default_factory=dict)
    delta_per_seed: dict[str, list[float]] = field(default_factory=dict)
    interval: dict[str, stats.Interval] = field(default_factory=dict)
    per_dataset: dict[str, dict[str, stats.Spread]] = field(default_factory=dict)


def load(method: str, eval_root: Path, seeds: list[int]) -> MethodEval:
    """Read ``eval_root/<method>/`` and check it covers exactly ``seeds``; errors name the file."""
    folder = Path(eval_root) / method
    path = folder / "metrics.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no evaluation of method {method!r} (run its train and evaluate stages)")
    try:
        content = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    found = content.get("seeds")
    if found != sorted(seeds):
        raise ValueError(f"{path}: evaluates seeds {found}, compare.seeds is {sorted(seeds)} (rerun its stages)")
    sel_path = folder / "selected.parquet"
    if not sel_path.is_file():
        raise FileNotFoundError(f"{sel_path}: selected predictions of method {method!r} missing")
    try:
        selected = pd.read_parquet(sel_path)
    except Exception as err:  # pyarrow raises several types for damaged files
        raise ValueError(f"{sel_path}: unreadable parquet ({err})") from None
    return MethodEval(method, content, selected, path)


def _subject_cms(ev: MethodEval, src: str, seeds: list[int], units: pd.MultiIndex, k: int) -> np.ndarray:
    rows = ev.selected[ev.selected["selection"] == src]
    seed_idx = pd.Index(seeds).get_indexer(rows["seed"])
    subj_idx = units.get_indexer(pd.MultiIndex.from_frame(rows[["dataset", "subject"]]))
    if (seed_idx < 0).any() or (subj_idx < 0).any():
        raise ValueError(f"{ev.path.parent / 'selected.parquet'}: rows of seeds or subjects the baseline does not have")
    return stats.subject_confusions(seed_idx, subj_idx, rows["true"].to_numpy(), rows["pred"].to_numpy(),
                                    len(seeds), len(units), k)


def _check_paired(ev: MethodEval, base: MethodEval, src: str) -> None:
    """Pairing needs the same test clips with the same truth in every seed."""
    cols = ["seed", "clip_id", "dataset", "subject", "true"]
    a = ev.selected.loc[ev.selected["selection"] == src, cols].sort_values(cols[:2]).reset_index(drop=True)
    b = base.selected.loc[base.selected["selection"] == src, cols].sort_values(cols[:2]).reset_index(drop=True)
    if not a.equals(b):
        raise ValueError(
            f"{ev.path.parent / 'selected.parquet'}: its {src} clips differ from the baseline's "
            f"({base.path.parent / 'selected.parquet'}); methods are compared on the same clips only"
        )


def compare(params: Params, evals: dict[str, MethodEval]) -> dict[str, dict[str, Row]]:
    """{rule: {method: Row}} in ``compare.methods`` order, with paired bootstrap intervals against the baseline."""
    cp = params.compare
    base = evals[cp.baseline]
    seeds = sorted(cp.seeds)
    k = len(base.content["classes"])
    for ev in evals.values():
        if ev.content.get("classes") != base.content["classes"]:
            raise ValueError(f"{ev.path}: classes {ev.content.get('classes')} differ from the baseline's")
    rules = [r for r in selection.RULES if all(r in ev.content.get("mean", {}) for ev in evals.values())]
    if not rules:
        raise ValueError("no epoch-selection rule is evaluated for every method (see eval.rules)")
    datasets = base.content.get("datasets", [])
    units = pd.MultiIndex.from_frame(
        base.selected[["dataset", "subject"]].drop_duplicates().sort_values(["dataset", "subject"]))
    counts = stats.resample_counts(len(units), cp.bootstrap_resamples, cp.bootstrap_seed)
    cms: dict[tuple[str, str], np.ndarray] = {}

    def subject_cms(ev: MethodEval, src: str) -> np.ndarray:
        if (ev.name, src) not in cms:
            if ev is not base:
                _check_paired(ev, base, src)
            cms[ev.name, src] = _subject_cms(ev, src, seeds, units, k)
        return cms[ev.name, src]

    table: dict[str, dict[str, Row]] = {}
    for rule in rules:
        table[rule] = {}
        for method, ev in evals.items():
            row = Row({m: stats.Spread.of(ev.per_seed(rule, m)) for m in metrics.METRICS})
            if len(datasets) > 1:
                row.per_dataset = {
                    ds: {m: stats.Spread.of(ev.per_dataset(rule, m, ds)) for m in metrics.METRICS} for ds in datasets
                }
            if method != cp.baseline:
                for src in dict.fromkeys(selection.source(rule, m) for m in metrics.METRICS):
                    boot = stats.paired_bootstrap(subject_cms(ev, src), subject_cms(base, src), counts)
                    for m in metrics.METRICS:
                        if selection.source(rule, m) == src:
                            row.interval[m] = boot[m]
                for m in metrics.METRICS:
                    row.delta[m] = row.spread[m].mean - stats.Spread.of(base.per_seed(rule, m)).mean
                    row.delta_per_seed[m] = [
                        a - b for a, b in zip(ev.per_seed(rule, m), base.per_seed(rule, m), strict=True)
                    ]
            table[rule][method] = row
    return table


# ------------------------------------------------------------------------------------------- provenance
def changed_params(params: Params) -> dict[str, Any]:
    """Dotted key -> value of every result-relevant param that differs from memix.config's defaults
    (``mixing.<m>`` only for the compared methods)."""
    ours, defaults = dump_params(params), dump_params(Params())
    out: dict[str, Any] = {}

    def walk(a: Any, b: Any, key: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for name in a:
                walk(a[name], b.get(name), f"{key}.{name}" if key else name)
        elif a != b and key not in RUN_ONLY:
            out[key] = a

    for section in RESULT_SECTIONS:
        if section == "mixing":
            for method in params.compare.methods:
                walk(ours["mixing"][method], defaults["mixing"][method], f"mixing.{method}")
        else:
            walk(ours[section], defaults[section], section)
    return out


def sheets(report_path: Path | None) -> list[dict[str, str]]:
    """(file, sha256) of every coding sheet the ingest report names (one per source dataset)."""
    if report_path is None or not Path(report_path).is_file():
        return []
    try:
        report = json.loads(Path(report_path).read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{report_path}: not valid JSON ({err})") from None
    found: list[dict[str, str]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("sha256"), str) and isinstance(node.get("file"), str):
                found.append({"file": node["file"], "sha256": node["sha256"]})
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(report)
    return found


def provenance(params: Params, base: MethodEval, ingest_report: Path | None) -> dict[str, Any]:
    content = base.content
    return {
        "datasets": [d for d in content.get("datasets", []) if d] or [params.dataset.name],
        "dataset_param": params.dataset.name,
        "sheets": sheets(ingest_report),
        "model": params.model.name + (" + onset-face ResNet-18 stream (MixMeFormer)" if params.model.face_stream
                                      else ""),
        "epochs": params.train.epochs,
        "params_changed": changed_params(params),
        "code": "the commit holding this table's dvc.lock (which pins the md5 of every code file the stages ran)",
    }


# ------------------------------------------------------------------------------------------- writing
def to_json(table: dict[str, dict[str, Row]], params: Params, base: MethodEval, prov: dict[str, Any]) -> dict:
    cp = params.compare
    content = base.content
    out: dict[str, Any] = {
        "baseline": cp.baseline,
        "methods": list(cp.methods),
        "titles": {m: method_title(m) for m in cp.methods},
        "seeds": sorted(cp.seeds),
        "classes": content["classes"],
        "n_clips": content["n_clips"],
        "n_subjects": content["n_subjects"],
        "provenance": prov,
        "statistics": {
            "test": "paired bootstrap over test subjects",
            "statistic": "seed mean of the pooled LOSO metric, method minus baseline",
            "resample": "subjects with replacement, the same resample for every method, every seed in each",
            "resamples": cp.bootstrap_resamples,
            "seed": cp.bootstrap_seed,
            "confidence": stats.CONFIDENCE,
            "significant": "the interval excludes 0",
        },
        "rules": {rule: selection.RULES[rule] for rule in table},
    }
    if "per_dataset" in content:
        out["per_dataset_counts"] = content["per_dataset"]
    for rule, rows in table.items():
        out[rule] = {}
        for method, row in rows.items():
            entry: dict[str, Any] = {}
            for m in metrics.METRICS:
                s = row.spread[m]
                item: dict[str, Any] = {"mean": s.mean, "std": s.std, "per_seed": list(s.values)}
                if m in row.interval:
                    iv = row.interval[m]
                    item |= {"delta": row.delta[m],
                             "delta_per_seed": row.delta_per_seed[m], "ci95": [iv.low, iv.high],
                             "significant": iv.significant}
                entry[m] = item
            if row.per_dataset:
                entry["per_dataset"] = {
                    ds: {m: {"mean": s.mean, "std": s.std} for m, s in spreads.items()}
                    for ds, spreads in row.per_dataset.items()
                }
            out[rule][method] = entry
    return out


def summary(table: dict[str, dict[str, Row]]) -> dict[str, float]:
    """``<method>.<acc|uf1|uar>`` (last rule) and ``<method>.<metric>_oracle``: seed means rounded to 4 digits."""
    out: dict[str, float] = {}
    methods = next(iter(table.values()))
    for method in methods:
        for rule in table:
            for m in metrics.METRICS:
                key = f"{method}.{SHORT[m]}" + ("" if rule == "last" else f"_{rule}")
                out[key] = round(table[rule][method].spread[m].mean, 4)
    return out


def _num(value: float, metric: str, sign: bool = False) -> str:
    scale, digits = SCALE[metric]
    text = f"{value * scale:+.{digits}f}" if sign else f"{value * scale:.{digits}f}"
    return text.replace("-", "−")


def _title(method: str, baseline: str) -> str:
    return f"{method_title(method)} (baseline)" if method == baseline else method_title(method)


def render_markdown(table: dict[str, dict[str, Row]], params: Params, base: MethodEval, prov: dict) -> str:
    cp = params.compare
    content = base.content
    datasets = content.get("datasets", [])
    sheet_text = "; ".join(f"`{s['file']}` sha256 `{s['sha256']}`" for s in prov["sheets"])
    sheet_text = f"coding sheet {sheet_text}" if sheet_text else "coding sheet unknown: no ingest report"
    changed = prov["params_changed"]
    changed_text = ", ".join(f"`{k}: {json.dumps(v)}`" for k, v in changed.items()) or "none (all defaults)"
    seeds = ", ".join(map(str, sorted(cp.seeds)))
    lines = [
        "# Mixup comparison (pooled LOSO)",
        "",
        f"- **Data**: {', '.join(prov['datasets'])} (`dataset.name: {prov['dataset_param']}`; {sheet_text});",
        f"  {content['n_clips']} test clips, {content['n_subjects']} subjects, {len(content['classes'])} classes "
        f"({', '.join(content['classes'])}).",
        f"- **Model**: {prov['model']}; epochs per fold: {prov['epochs']}; seeds {seeds}.",
        f"- **Params that differ from memix's defaults**: {changed_text}.",
        f"- **Code**: {prov['code']}; not written here, so that the table's bytes depend only on what DVC tracks.",
        "",
        "Each figure is the mean over seeds ± the sample standard deviation (0 with one seed) of the metric on all",
        "folds' predictions pooled: Acc in %, UF1 = mean over ALL classes of 2TP/(2TP+FP+FN), UAR = mean recall.",
        f"Δ is the difference to the baseline, **{method_title(cp.baseline)}** (`compare.baseline: {cp.baseline}`),",
        f"with its {stats.CONFIDENCE * 100:.0f} % interval from a paired bootstrap over test subjects: "
        f"{cp.bootstrap_resamples} resamples (seed {cp.bootstrap_seed}) of",
        "the subjects with replacement, the same resample for every method and every seed in each, each time",
        "recomputing the seed mean of the pooled metric for both methods. A **bold** Δ is significant: its interval",
        "excludes 0. The per-seed Δ compare each method with the baseline trained with the same seed.",
    ]
    rule_titles = {"last": "Honest rule: last epoch", "oracle": "Oracle rule (TEST-SET SELECTION)"}
    for rule, rows in table.items():
        lines += ["", f"## {rule_titles[rule]}", "", f"_{selection.RULES[rule]}._", ""]
        if rule == "oracle":
            lines[-1:-1] = ["The intervals take the chosen epochs as given: they ignore that the choice was made on "
                            "the test subjects."]
        header = ["method"]
        for m in metrics.METRICS:
            header += [LABELS[m], f"Δ{LABELS[m].split()[0]} [95 % CI]"]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for method, row in rows.items():
            cells = [_title(method, cp.baseline)]
            for m in metrics.METRICS:
                s = row.spread[m]
                cells.append(f"{_num(s.mean, m)} ± {_num(s.std, m)}")
                if m in row.interval:
                    iv = row.interval[m]
                    text = f"{_num(row.delta[m], m, True)} [{_num(iv.low, m, True)}, {_num(iv.high, m, True)}]"
                    cells.append(f"**{text}**" if iv.significant else text)
                else:
                    cells.append("—")
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", f"Per-seed Δ to the baseline (seeds {seeds}):", ""]
        lines += ["| method | " + " | ".join(f"Δ{LABELS[m].split()[0]}" for m in metrics.METRICS) + " |",
                  "|---|" + "---|" * len(metrics.METRICS)]
        for method, row in rows.items():
            if method == cp.baseline:
                continue
            cells = [", ".join(_num(v, m, True) for v in row.delta_per_seed[m]) for m in metrics.METRICS]
            lines.append(f"| {_title(method, cp.baseline)} | " + " | ".join(cells) + " |")
        if len(datasets) > 1:
            counts = content.get("per_dataset", {})
            lines += ["", "Per source dataset (mean over seeds; UF1 over the classes in that source's truth or "
                      "predictions, UAR over those in its truth):", ""]
            header = ["method"] + [f"{ds} {LABELS[m]}" for ds in datasets for m in metrics.METRICS]
            lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            for method, row in rows.items():
                cells = [_num(row.per_dataset[ds][m].mean, m) for ds in datasets for m in metrics.METRICS]
                lines.append(f"| {_title(method, cp.baseline)} | " + " | ".join(cells) + " |")
            lines += ["", "n: " + "; ".join(
                f"{ds} {c.get('n_clips')} clips, {c.get('n_subjects')} subjects" for ds, c in counts.items()) + "."]
    lines += [
        "",
        "## Published reference (CASME II, 5 classes, ViT-B/16, ORACLE selection only)",
        "",
        "From the MEMix paper, obtained with test-set epoch selection: compare these with the oracle table only,",
        "and only on CASME II; the synthetic default is not CASME II.",
        "",
        "| method | Acc (%) | F1 |",
        "|---|---|---|",
    ]
    base_acc, base_f1 = PAPER_CASME2["none"]
    for method, (acc, f1) in PAPER_CASME2.items():
        if method == "none":
            lines.append(f"| {method_title(method)} | {acc:.2f} | {f1:.4f} |")
        else:
            lines.append(
                f"| {method_title(method)} | {acc:.2f}({acc - base_acc:+.2f}) | {f1:.4f}({f1 - base_f1:+.4f}) |"
            )
    return "\n".join(lines) + "\n"


def render_png(table: dict[str, dict[str, Row]], baseline: str, path: Path) -> None:
    """Bars per method, Acc / UF1 / UAR for each rule, error bars = std over seeds, dots = single seeds."""
    from matplotlib.figure import Figure

    methods = list(next(iter(table.values())))
    names = [_title(m, baseline) for m in methods]
    x = np.arange(len(methods))
    fig = Figure(figsize=(max(10.0, 1.6 * len(methods) + 3), 4.4))  # no pyplot state
    # fixed margins (room for the rotated method names): constrained layout would double the drawing time
    fig.subplots_adjust(left=0.11, right=0.99, bottom=0.3, top=0.9, wspace=0.4)
    axes = fig.subplots(1, len(metrics.METRICS))
    colours = {"last": "#3b75af", "oracle": "#c44e52"}
    width = 0.8 / len(table)
    for ax, m in zip(axes, metrics.METRICS, strict=True):
        scale = SCALE[m][0]
        for i, (rule, rows) in enumerate(table.items()):
            offset = (i - (len(table) - 1) / 2) * width
            s = [rows[meth].spread[m] for meth in methods]
            ax.bar(x + offset, [v.mean * scale for v in s], width * 0.95, yerr=[v.std * scale for v in s],
                   color=colours[rule], alpha=0.85, capsize=3,
                   label="last epoch" if rule == "last" else "oracle (test-set selection)")
            for j, v in enumerate(s):
                ax.plot([x[j] + offset] * len(v.values), [w * scale for w in v.values], "k.", ms=3)
        ax.set_xticks(x, names, rotation=35, ha="right")
        ax.set_ylabel(LABELS[m])
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(loc="lower right", fontsize=8)
    fig.suptitle("Pooled LOSO results per mixing method (mean ± std over seeds)")
    save_png(fig, path, dpi=100)


def curves_table(evals: dict[str, MethodEval]) -> pd.DataFrame:
    """Long format: method (display name), epoch and each seed-mean curve, in method then epoch order."""
    frames = []
    for method, ev in evals.items():
        curves = ev.content.get("curves")
        if not curves or "epoch" not in curves:
            raise ValueError(f"{ev.path}: no training curves (rerun its evaluate stage)")
        frame = pd.DataFrame({"method": method_title(method), "epoch": curves["epoch"]})
        for col in CURVES:
            frame[col] = pd.array(curves.get(col, [None] * len(frame)), dtype="Float64")
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


OUTPUT_FILES = ("mixup_table.md", "mixup_table.json", "mixup_table.png", "summary.json", "curves.csv")


def run(params: Params, eval_root: Path, out_dir: Path, ingest_report: Path | None = None) -> dict[str, Any]:
    """Write mixup_table.{md,json,png}, summary.json and curves.csv into ``out_dir``; return the table's JSON."""
    cp = params.compare
    if cp.baseline not in cp.methods:
        raise ValueError(f"compare.baseline {cp.baseline!r} is not in compare.methods {list(cp.methods)}")
    evals = {m: load(m, Path(eval_root), list(cp.seeds)) for m in cp.methods}
    table = compare(params, evals)
    base = evals[cp.baseline]
    prov = provenance(params, base, ingest_report)
    content = to_json(table, params, base, prov)
    curves = curves_table(evals)
    out_dir = Path(out_dir)
    # all or none: a failure while writing one (a full disk) renames none of them into place
    with atomic.atomic_paths(*(out_dir / name for name in OUTPUT_FILES)) as (md, js, png, summ, csv):
        atomic.write_text(md, render_markdown(table, params, base, prov))
        atomic.write_json(js, content)
        render_png(table, cp.baseline, png)
        atomic.write_text(summ, json.dumps(summary(table), indent=2) + "\n")
        atomic.write_text(csv, curves.to_csv(index=False, lineterminator="\n", float_format="%.6g"))
    return content


def headline(content: dict[str, Any]) -> str:
    """One line: the best method by last-rule Acc (its Δ and whether it is significant) and the baseline."""
    rule = "last" if "last" in content else next(r for r in content["rules"])
    rows = content[rule]
    base = content["baseline"]
    best = max(rows, key=lambda m: (rows[m]["accuracy"]["mean"], rows[m]["uf1"]["mean"]))

    def figures(method: str) -> str:
        r = rows[method]
        return f"Acc {r['accuracy']['mean'] * 100:.2f} % UF1 {r['uf1']['mean']:.4f} UAR {r['uar']['mean']:.4f}"

    n = len(content["seeds"])
    text = f"compare ({rule} epoch, {n} seed{'s' if n != 1 else ''}): best {content['titles'][best]} {figures(best)}"
    if best == base:
        return text + " (the baseline)"
    acc = rows[best]["accuracy"]
    sig = "significant" if acc["significant"] else "not significant"
    low, high = acc["ci95"]
    text += f" (ΔAcc {acc['delta'] * 100:+.2f}, 95 % CI [{low * 100:+.2f}, {high * 100:+.2f}], {sig})"
    return text + f"; baseline {content['titles'][base]} {figures(base)}"
