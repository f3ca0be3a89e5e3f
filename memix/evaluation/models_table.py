"""The architecture table (``reports/models_table.md``): every network of the published comparison, ours beside
the published figure, under one honest LOSO.

Each trained (run, method) gets the seed table's figures (mean ± std over seeds of pooled Acc, F1 = UF1 and UAR)
under each selection rule (``last``; ``release``, the network under its own release's selection; ``oracle``), per
source dataset too when the predictions come from several, how much the release's selection adds to the honest
figure (release minus last), the paired bootstrap over test subjects against ``architectures.reference`` (the same
resamples and seeds as the mixing table), and its trainable parameters beside the authors' release. Networks of
the published table that are not trained say why (not built: what public material lacks; built but not fed: the
input the pipeline does not cache yet).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from memix.config import Params, method_title
from memix.evaluation import comparison, release_rules
from memix.evaluation.arch_runs import RUN_FILE
from memix.evaluation.release_rules import network
from memix.io import atomic
from memix.models import registry
from memix.models.published import PUBLISHED_TABLE, Label, PublishedRow

RULE_TITLES = {
    "last": "last epoch",
    "release": "release (each network's own release's selection, mostly on the test set)",
    "oracle": "oracle (test-set selection)",
}
"""The rules in the table's order, as its section titles name them."""


def run_key(run: str, method: str) -> str:
    return f"{run}/{method}"


def _load_runs(params: Params, arch_root: Path) -> tuple[dict[str, dict[str, Any]], dict[str, comparison.MethodEval]]:
    seeds = sorted(params.compare.seeds)
    infos, evals = {}, {}
    for name, spec in params.architectures.runs.items():
        path = arch_root / name / RUN_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path}: run {name!r} has not finished (run its arch stage)")
        infos[name] = json.loads(path.read_text())
        for method in spec.methods:
            ev = comparison.load(method, arch_root / name / "eval", seeds)
            ev.name = run_key(name, method)
            evals[ev.name] = ev
    return infos, evals


def build(params: Params, arch_root: Path) -> dict[str, Any]:
    """The table's content: published rows with our runs attached, and runs of no published network after them."""
    ap = params.architectures
    infos, evals = _load_runs(params, Path(arch_root))
    table: dict[str, dict[str, comparison.Row]] = {}
    ref = None
    if evals:
        ref = run_key(ap.reference.run, ap.reference.method)
        ordered = {ref: evals[ref], **{k: v for k, v in evals.items() if k != ref}}
        cp = params.compare
        shim = SimpleNamespace(compare=SimpleNamespace(
            baseline=ref, seeds=cp.seeds, bootstrap_resamples=cp.bootstrap_resamples, bootstrap_seed=cp.bootstrap_seed,
        ))
        table = comparison.compare(shim, ordered)  # type: ignore[arg-type]
    rows = []
    used = set()
    for pub in PUBLISHED_TABLE:
        runs = [n for n, info in infos.items() if network(info["model"]) == pub.built]
        used.update(runs)
        rows.append(_row(pub.network, pub.year, pub.kind, pub, runs, infos, table, pub.built))
    for name, info in infos.items():
        if name not in used:
            rows.append(_row(name, None, _kind(info), None, [name], infos, table, network(info["model"])))
    rules = [r for r in RULE_TITLES if r in table] + [r for r in table if r not in RULE_TITLES]
    return {"reference": ref, "rules": rules, "rows": rows,
            "seeds": sorted(params.compare.seeds), "resamples": params.compare.bootstrap_resamples}


def _kind(info: dict[str, Any]) -> str:
    name = info["model"]["name"]
    return registry.architecture(name).module.TYPE if registry.is_architecture(name) else "Transformer"


def _row(
    name: str, year: int | None, kind: str, pub: PublishedRow | None, runs: list[str],
    infos: dict[str, dict[str, Any]], table: dict[str, dict[str, comparison.Row]], built: str | None,
) -> dict[str, Any]:
    """One network's entry: its published figure and what it was measured on, our runs of it, or why there are
    none, and its release's selection rule (where one is recorded for the network it is built as)."""
    status = ""
    if pub is not None and not runs:
        status = _why_untrained(pub)
    trained = []
    for run in runs:
        info = infos[run]
        for method in info["methods"]:
            key = run_key(run, method)
            trained.append({
                "run": run, "method": method, "key": key,
                "trainable_params": info["trainable_params"],
                "released_params": (info["released"] or {}).get("trainable_params"),
                "released_classes": (info["released"] or {}).get("num_classes"),
                "rules": {rule: _figures(table[rule][key]) for rule in table},
            })
            if "release" in table and "last" in table:  # what the release's selection adds to the honest figure
                rel, last = table["release"][key].spread, table["last"][key].spread
                trained[-1]["inflation"] = {m: rel[m].mean - last[m].mean for m in ("accuracy", "uf1")}
    published = None if pub is None else {"acc": pub.acc, "f1": pub.f1, "uar": pub.uar,
                                       **dataclasses.asdict(label(pub))}
    rule = release_rules.RULES.get(built) if built is not None else None
    return {"network": name, "year": year, "type": kind, "published": published, "status": status,
            "trained": trained, "release_rule": None if rule is None else rule.record()}


def _why_untrained(pub: PublishedRow) -> str:
    if pub.built is None:
        return f"not built: {pub.why}"
    problem = registry.training_problem(pub.built)
    if problem:
        return f"built, not trained here: {problem}"
    return ("built; " if registry.is_architecture(pub.built) else "") + "not in this params file's architectures.runs"


def label(pub: PublishedRow) -> Label:
    """What a published figure was measured on and where that is written: the module's ``PUBLISHED`` for a network
    built in :mod:`memix.models.arch`, else the row's own label."""
    if pub.built is not None and registry.is_architecture(pub.built):
        p = registry.architecture(pub.built).module.PUBLISHED
        return Label(**{f.name: str(p[f.name]) for f in dataclasses.fields(Label)})
    if pub.label is None:
        raise ValueError(f"published row {pub.network} has no label")
    return pub.label


def _figures(row: comparison.Row) -> dict[str, Any]:
    out: dict[str, Any] = {m: {"mean": s.mean, "std": s.std} for m, s in row.spread.items()}
    for m, iv in row.interval.items():
        out[m]["delta"] = iv.delta
        out[m]["low"], out[m]["high"] = iv.low, iv.high
    if row.per_dataset:
        out["per_dataset"] = {ds: {m: {"mean": s.mean, "std": s.std} for m, s in spreads.items()}
                              for ds, spreads in row.per_dataset.items()}
    return out


def render_markdown(content: dict[str, Any]) -> str:
    """The table as Markdown: per rule one line per trained (run, method) or untrained network; per source dataset
    each run's figures under every rule; each network's release rule; what each published figure was measured on."""
    ref = content["reference"]
    published = [row["network"] for row in content["rows"] if row["published"] is not None]
    notes = {name: str(i) for i, name in enumerate(published, start=1)}  # the label list's numbers
    lines = ["# Architectures under one LOSO", ""]
    if ref is None:
        lines += ["No architecture was trained with these params (`architectures.runs` is empty; "
                  "`cp params.models.yaml params.yaml && dvc repro` trains them). The published figures:", ""]
    else:
        lines += [f"Pooled LOSO figures, mean ± std over seeds {content['seeds']}; Δ is the difference to "
                  f"`{ref}` with a 95 % paired bootstrap interval over test subjects ({content['resamples']} "
                  "resamples; * = the interval excludes 0). Published figures are as their sources print them "
                  "(MixMeFormer's comparison for its rows, HTNet's and CausalNet's own releases for theirs); what "
                  "each was measured on, and where that is written, is in the list below.", ""]
    rules = content["rules"]
    for rule in rules or ["last"]:
        inflation = rule == "release" and "last" in rules
        if rules:
            lines += [f"## Selection: {RULE_TITLES.get(rule, rule)}", ""]
        if rule == "release":
            lines += ["Each network under its own release's epoch selection (each row's rule is in the list below "
                      "the tables)" + ("; inflation = this figure minus the last-epoch one, Acc in points." if
                                       inflation else "."), ""]
        lines += ["| Network | Year | Type | Run (mixing) | Acc (%) | F1 | UAR | Δ Acc vs reference (pts) | "
                  + ("Inflation: release − last, Acc (pts) / UF1 | " if inflation else "")
                  + "Trainable params (ours / released) | Published Acc / F1 / UAR [label] | Status |",
                  "|---|---|---|---|---|---|---|---|" + ("---|" if inflation else "") + "---|---|---|"]
        for row in content["rows"]:
            pub = row["published"]
            pub_txt = "—" if pub is None else f"{_published_figures(pub)} [{notes[row['network']]}]"
            year = row["year"] or ""
            if not row["trained"]:
                lines.append(f"| {row['network']} | {year} | {row['type']} | — | — | — | — | — | "
                             + ("— | " if inflation else "") + f"— | {pub_txt} | {row['status']} |")
                continue
            for t in row["trained"]:
                f = t["rules"][rule]
                acc, f1, uar = f["accuracy"], f["uf1"], f["uar"]
                delta = "reference" if t["key"] == ref else _delta(acc)
                rel = t["released_params"]
                rel_txt = "—" if rel is None else f"{rel:,} ({t['released_classes']} classes)"
                infl = f"{_inflation(t)} | " if inflation else ""
                lines.append(
                    f"| {row['network']} | {year} | {row['type']} | {t['run']} ({method_title(t['method'])}) | "
                    f"{acc['mean'] * 100:.2f} ± {acc['std'] * 100:.2f} | {f1['mean']:.4f} ± {f1['std']:.4f} | "
                    f"{uar['mean']:.4f} ± {uar['std']:.4f} | {delta} | {infl}{t['trainable_params']:,} / {rel_txt} | "
                    f"{pub_txt} | trained here |"
                )
        lines.append("")
    lines += _per_source(content)
    described = [row for row in content["rows"] if row.get("release_rule")]
    if described:
        lines += ["## Each network's release rule (the `release` selection)", ""]
        lines += [f"- **{row['network']}** (`{r['network']}`; {r['release']}, {r['where']}): {r['description']}."
                  for row in described for r in [row["release_rule"]]]
        lines.append("")
    lines += ["## What each published figure was measured on", ""]
    lines += [f"{notes[row['network']]}. **{row['network']}** ({_published_figures(row['published'])}): "
              f"{Label(**{f: row['published'][f] for f in _LABEL}).text()}"
              for row in content["rows"] if row["published"] is not None]
    return "\n".join(lines)


def _published_figures(pub: dict[str, Any]) -> str:
    """A published row's figures as printed: Acc / F1 (/ UAR where its source gives one)."""
    text = f"{_num(pub['acc'], 2)} / {_num(pub['f1'], 4)}"
    return text if pub.get("uar") is None else f"{text} / {_num(pub['uar'], 4)}"


def _inflation(t: dict[str, Any]) -> str:
    """Release minus last, seed means: Acc in points / UF1."""
    return f"{t['inflation']['accuracy'] * 100:+.2f} / {t['inflation']['uf1']:+.4f}"


def _per_source(content: dict[str, Any]) -> list[str]:
    """Per run and source dataset, UF1 / UAR / Acc under every rule (when the predictions come from several)."""
    rules = content["rules"]
    runs = [(row, t) for row in content["rows"] for t in row["trained"]
            if rules and "per_dataset" in t["rules"][rules[0]]]
    if not runs:
        return []
    lines = ["## Per source dataset", "",
             "UF1 / UAR / Acc (%) of each source's clips in the pool, mean over seeds (UF1 over the classes in that "
             "source's truth or predictions, UAR over those in its truth).", "",
             "| Network | Run (mixing) | Source | " + " | ".join(f"{r}: UF1 / UAR / Acc" for r in rules) + " |",
             "|---|---|---|" + "---|" * len(rules)]
    for row, t in runs:
        for ds in t["rules"][rules[0]]["per_dataset"]:
            cells = []
            for r in rules:
                f = t["rules"][r]["per_dataset"].get(ds)
                cells.append("— (no clip kept)" if f is None else
                             f"{f['uf1']['mean']:.4f} / {f['uar']['mean']:.4f} / {f['accuracy']['mean'] * 100:.2f}")
            lines.append(f"| {row['network']} | {t['run']} ({method_title(t['method'])}) | {ds} | "
                         + " | ".join(cells) + " |")
    return [*lines, ""]


_LABEL = [f.name for f in dataclasses.fields(Label)]


def _num(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _delta(fig: dict[str, Any]) -> str:
    mark = "*" if fig["low"] > 0 or fig["high"] < 0 else ""
    return (f"{fig['delta'] * 100:+.2f}{mark} [{fig['low'] * 100:+.2f}, {fig['high'] * 100:+.2f}]")


def run(params: Params, arch_root: Path, out_md: Path) -> dict[str, Any]:
    """Write the table (Markdown, and its numbers as JSON beside it); returns the content."""
    content = build(params, arch_root)
    atomic.write_text(out_md, render_markdown(content) + "\n")
    atomic.write_json(Path(out_md).with_suffix(".json"), content)
    return content


__all__ = ["build", "render_markdown", "run", "run_key"]
