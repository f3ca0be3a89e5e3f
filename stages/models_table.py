"""DVC stage `models_table`: the architecture comparison's table -> reports/models_table.md (+ .json)."""

from __future__ import annotations

import logging
import sys

import _common

from memix.config import load_params
from memix.evaluation import models_table
from memix.io import atomic, paths

log = logging.getLogger("memix.stages.models_table")


def main(argv: list[str] | None = None) -> int:
    p = _common.parser(
        "models_table",
        "Tabulate every network of the published MER comparison and the field's public networks since: our runs under "
        "last, release (each network's own release's selection, with the inflation release - last) and oracle, per "
        "source dataset, paired intervals against architectures.reference, trainable parameters beside the release, "
        "and why the others are not run.",
    )
    args = p.parse_args(argv)

    def body() -> None:
        atomic.remove_stale_temps(paths.MODELS_TABLE, paths.MODELS_TABLE.with_suffix(".json"))
        content = models_table.run(load_params(args.params), paths.ARCH, paths.MODELS_TABLE)
        trained = sum(len(row["trained"]) for row in content["rows"])
        log.info("models_table: %d networks, %d trained (run, method) row(s) -> %s", len(content["rows"]), trained,
                 paths.MODELS_TABLE)

    return _common.run("models_table", body)


if __name__ == "__main__":
    sys.exit(main())
