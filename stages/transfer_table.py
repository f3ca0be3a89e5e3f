"""DVC stage `transfer_table`: one cross-dataset protocol's table -> reports/transfer/<protocol>.md and .json."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import _common

from memix.config import TRANSFER_PROTOCOLS, load_params
from memix.evaluation import transfer
from memix.io import atomic, paths

log = logging.getLogger("memix.stages.transfer_table")


def main(argv: list[str] | None = None) -> int:
    p = _common.parser(
        "transfer_table",
        "The table of one cross-dataset protocol: every fold (train -> test) of every method of transfer.methods at "
        "its last epoch (UF1, UAR, Acc; mean ± sd over compare.seeds), with the composite's LOSO (CDE) of the same "
        "methods where compare.methods has them.",
    )
    p.add_argument("--protocol", choices=TRANSFER_PROTOCOLS, required=True, help="cross-dataset protocol")
    p.add_argument("--transfer-root", default=str(paths.TRANSFER), help="transfer runs (default: %(default)s)")
    p.add_argument("--eval-root", default=str(paths.EVAL), help="LOSO evaluations (default: %(default)s)")
    p.add_argument("--out", default=str(paths.TRANSFER_REPORTS), help="output folder (default: %(default)s)")
    args = p.parse_args(argv)

    def body() -> None:
        params = load_params(args.params)
        out = Path(args.out)
        atomic.remove_stale_temps(out / f"{args.protocol}.md", out / f"{args.protocol}.json")
        table = transfer.run(args.protocol, Path(args.transfer_root), Path(args.eval_root), params.transfer.methods,
                             list(params.compare.seeds), out, loso_methods=list(params.compare.methods))
        log.info("%s", transfer.headline(table))

    return _common.run("transfer_table", body)


if __name__ == "__main__":
    sys.exit(main())
