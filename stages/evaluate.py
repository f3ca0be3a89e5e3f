"""DVC stage `evaluate@<method>`: pooled LOSO metrics of one method over all its seeds -> reports/eval/<method>/."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import _common

from memix.config import MIXING_METHODS, load_params, method_title
from memix.evaluation import evaluate, release_rules
from memix.io import atomic, paths

log = logging.getLogger("memix.stages.evaluate")


def main(argv: list[str] | None = None) -> int:
    p = _common.parser("evaluate", "Pooled LOSO Acc, UF1, UAR per seed and over seeds, under eval.rules (last, oracle, "
                       "release: the model's own release's selection).")
    p.add_argument("--method", choices=MIXING_METHODS, default="none", help="mixing method (default: %(default)s)")
    p.add_argument("--train-dir", help="train output folder (default: data/train/<method>)")
    p.add_argument("--out", help="output folder (default: reports/eval/<method>)")
    args = p.parse_args(argv)

    def body() -> None:
        src = Path(args.train_dir) if args.train_dir else paths.train_dir(args.method)
        out = Path(args.out) if args.out else paths.eval_dir(args.method)
        atomic.remove_stale_temps(out)
        params = load_params(args.params)
        net = release_rules.network(params.model.model_dump(mode="json"))
        content = evaluate.run(params.eval, args.method, train_dir=src, out_dir=out, network=net)
        rule = "last" if "last" in content["mean"] else next(iter(content["mean"]))
        mean = content["mean"][rule]
        log.info(
            "evaluate %s (%s epoch, seeds %s, %d clips): Acc %.2f %% ± %.2f, UF1 %.4f ± %.4f, UAR %.4f ± %.4f",
            method_title(args.method), rule, ",".join(map(str, content["seeds"])), content["n_clips"],
            mean["accuracy"]["mean"] * 100, mean["accuracy"]["std"] * 100, mean["uf1"]["mean"], mean["uf1"]["std"],
            mean["uar"]["mean"], mean["uar"]["std"],
        )

    return _common.run("evaluate", body)


if __name__ == "__main__":
    sys.exit(main())
