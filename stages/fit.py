"""DVC stage `fit`: train one mixing method on EVERY subject -> models/<method>.pt, for `memix predict`/`export`."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import _common

from memix.config import MIXING_METHODS, load_params
from memix.io import atomic, paths
from memix.models import resolve_device
from memix.serving import modelfile
from memix.training import fit
from memix.training.inputs import read_data

log = logging.getLogger("memix.stages.fit")


def main(argv: list[str] | None = None) -> int:
    p = _common.parser("fit", "Train one mixing method on every subject (seed fit.seed) and write its model file.")
    p.add_argument("--method", choices=MIXING_METHODS, default="memix", help="mixing method (default: %(default)s)")
    p.add_argument("--flow", default=str(paths.FLOW), help="flow stage output (default: %(default)s)")
    p.add_argument("--out", help="model file (default: models/<method>.pt)")
    args = p.parse_args(argv)

    def body() -> None:
        params = load_params(args.params)
        out = Path(args.out) if args.out else paths.model_file(args.method)
        atomic.remove_stale_temps(out)
        data = read_data(params, Path(args.flow))
        device = resolve_device(params.train.device)
        result = fit.fit(params, args.method, params.fit.seed, data, device)
        contents = modelfile.from_fit(params, args.method, params.fit.seed, data, result, Path(params.faces.model))
        modelfile.write(out, contents)
        log.info(
            "fit %s: %d clips of %d subjects, %d epochs, seed %d; final train loss %.3f, accuracy %.3f -> %s",
            args.method, result.n_clips, result.n_subjects, params.train.epochs, params.fit.seed,
            result.history["train_loss"][-1], result.history["train_accuracy"][-1], out,
        )

    return _common.run("fit", body)


if __name__ == "__main__":
    sys.exit(main())
