"""The comparison written out: the table as JSON, Markdown and a bar chart, and the flat DVC metric.

The honest table shows each method's last-epoch training accuracy beside its test figures, so a reader sees at a
glance whether the model underfits (training accuracy near the test accuracy: nothing for a regulariser to close)
or memorises its folds (training accuracy far above it: the regime mixing methods exist for).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from memix.config import Params, method_title
from memix.evaluation import metrics, selection, stats
from memix.evaluation.comparison import MethodEval, Row
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

LABELS = {"accuracy": "Acc (%)", "uf1": "UF1", "uar": "UAR"}
RULE_TITLES = {"last": "Honest rule: last epoch", "oracle": "Oracle rule (TEST-SET SELECTION)",
               "release": "Release rule (the model's own release's selection; for the flow ViT, the MEMix release's "
               "TEST-SET SELECTION)"}
BAR_LABELS = {"last": "last epoch", "oracle": "oracle (test-set selection)", "release": "release's own rule"}
SHORT = {"accuracy": "acc", "uf1": "uf1", "uar": "uar"}
SCALE = {"accuracy": (100.0, 2), "uf1": (1.0, 4), "uar": (1.0, 4)}


TRAIN_ACC_NOTE = (
    "Train acc: each fold's accuracy on the batches it trained on in its last epoch (augmented, and mixed for a "
    "mixing method), folds pooled, mean over seeds. Far above the test Acc, the model memorises its training folds "
    "(the regime a regulariser such as mixup is for); close to it, the model underfits."
)


NoiseSpreads = dict[str, dict[int, dict[str, stats.Spread]]]
"""method -> key-frame noise level (0 = unshifted) -> metric -> spread over seeds; empty without levels."""

NOISE_NOTE = (
    "UF1 at ±n frames: the same last-epoch models on the test clips with onset and apex each moved by a seeded draw "
    "in [-n, n] frames (`eval.keyframe_noise`; clamped to the clip's frames, apex after onset), mean ± sd over seeds."
)


def noise_header(level: int) -> str:
    """A key-frame noise column's title."""
    return f"UF1 at ±{level} frame{'s' if level != 1 else ''}"


def to_json(
    table: dict[str, dict[str, Row]], params: Params, base: MethodEval, prov: dict[str, Any],
    train_acc: dict[str, float | None], noise: NoiseSpreads | None = None,
) -> dict:
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
        "train_accuracy_last_epoch": {"note": TRAIN_ACC_NOTE, **{m: train_acc.get(m) for m in cp.methods}},
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
    if noise:
        out["keyframe_noise"] = {
            "note": NOISE_NOTE,
            "levels": sorted(next(iter(noise.values()))),
            "seed": params.eval.keyframe_noise_seed,
            "methods": {
                method: [
                    {"level": level, **{m: {"mean": s.mean, "std": s.std, "per_seed": list(s.values)}
                                        for m, s in spreads.items()}}
                    for level, spreads in sorted(by_level.items())
                ]
                for method, by_level in noise.items()
            },
        }
    return out


def summary(table: dict[str, dict[str, Row]], noise: NoiseSpreads | None = None) -> dict[str, float]:
    """``<method>.<acc|uf1|uar>`` (last rule) and ``<method>.<metric>_<rule>`` (oracle, release): seed means rounded
    to 4 digits; with key-frame noise, ``<method>.uf1_kf<n>`` per level n."""
    out: dict[str, float] = {}
    methods = next(iter(table.values()))
    for method in methods:
        for rule in table:
            for m in metrics.METRICS:
                key = f"{method}.{SHORT[m]}" + ("" if rule == "last" else f"_{rule}")
                out[key] = round(table[rule][method].spread[m].mean, 4)
        for level, spreads in sorted((noise or {}).get(method, {}).items()):
            if level:
                out[f"{method}.uf1_kf{level}"] = round(spreads["uf1"].mean, 4)
    return out


def _num(value: float, metric: str, sign: bool = False) -> str:
    scale, digits = SCALE[metric]
    text = f"{value * scale:+.{digits}f}" if sign else f"{value * scale:.{digits}f}"
    return text.replace("-", "−")


def _title(method: str, baseline: str) -> str:
    return f"{method_title(method)} (baseline)" if method == baseline else method_title(method)


def render_markdown(
    table: dict[str, dict[str, Row]], params: Params, base: MethodEval, prov: dict, train_acc: dict[str, float | None],
    noise: NoiseSpreads | None = None,
) -> str:
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
    levels = sorted(n for n in next(iter(noise.values())) if n) if noise else []
    for rule, rows in table.items():
        lines += ["", f"## {RULE_TITLES[rule]}", "", f"_{selection.RULES[rule]}._", ""]
        if rule != "last":
            lines[-1:-1] = ["The intervals take the chosen epochs as given: they ignore that the choice was made on "
                            "the test subjects."]
        with_train = rule == "last"  # the training accuracy does not depend on the selection rule: shown once
        if with_train:
            lines[-1:-1] = ["", TRAIN_ACC_NOTE]
        with_noise = rule == "last" and bool(levels)  # the noise sets are scored by the last epoch's models
        if with_noise:
            lines[-1:-1] = ["", NOISE_NOTE]
        header = ["method", "Train acc (%)"] if with_train else ["method"]
        for m in metrics.METRICS:
            header += [LABELS[m], f"Δ{LABELS[m].split()[0]} [95 % CI]"]
        header += [noise_header(n) for n in levels] if with_noise else []
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for method, row in rows.items():
            cells = [_title(method, cp.baseline)]
            if with_train:
                acc = train_acc.get(method)
                cells.append("—" if acc is None else _num(acc, "accuracy"))
            for m in metrics.METRICS:
                s = row.spread[m]
                cells.append(f"{_num(s.mean, m)} ± {_num(s.std, m)}")
                if m in row.interval:
                    iv = row.interval[m]
                    text = f"{_num(row.delta[m], m, True)} [{_num(iv.low, m, True)}, {_num(iv.high, m, True)}]"
                    cells.append(f"**{text}**" if iv.significant else text)
                else:
                    cells.append("—")
            if with_noise:
                spreads = noise[method]  # type: ignore[index]
                cells += [f"{_num(spreads[n]['uf1'].mean, 'uf1')} ± {_num(spreads[n]['uf1'].std, 'uf1')}"
                          for n in levels]
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
    if levels and "last" not in table:  # no last-epoch table to add the columns to (eval.rules without last)
        lines += ["", "## Key-frame noise (each fold's last epoch)", "", NOISE_NOTE, "",
                  "| method | UF1 | " + " | ".join(noise_header(n) for n in levels) + " |",
                  "|---|---|" + "---|" * len(levels)]
        for method, spreads in noise.items():  # type: ignore[union-attr]
            cells = [f"{_num(spreads[n]['uf1'].mean, 'uf1')} ± {_num(spreads[n]['uf1'].std, 'uf1')}"
                     for n in (0, *levels)]
            lines.append(f"| {_title(method, cp.baseline)} | " + " | ".join(cells) + " |")
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
    colours = {"last": "#3b75af", "oracle": "#c44e52", "release": "#dd8452"}
    width = 0.8 / len(table)
    for ax, m in zip(axes, metrics.METRICS, strict=True):
        scale = SCALE[m][0]
        for i, (rule, rows) in enumerate(table.items()):
            offset = (i - (len(table) - 1) / 2) * width
            s = [rows[meth].spread[m] for meth in methods]
            ax.bar(x + offset, [v.mean * scale for v in s], width * 0.95, yerr=[v.std * scale for v in s],
                   color=colours[rule], alpha=0.85, capsize=3, label=BAR_LABELS[rule])
            for j, v in enumerate(s):
                ax.plot([x[j] + offset] * len(v.values), [w * scale for w in v.values], "k.", ms=3)
        ax.set_xticks(x, names, rotation=35, ha="right")
        ax.set_ylabel(LABELS[m])
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(loc="lower right", fontsize=8)
    fig.suptitle("Pooled LOSO results per mixing method (mean ± std over seeds)")
    save_png(fig, path, dpi=100)
