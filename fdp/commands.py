"""The installed commands of `fdp` (`[project.scripts]` in pyproject.toml): `fdp-train` runs `python -m fdp.train`,
and so on. Each imports its module only when it runs, so one command never pays for another's imports."""

from __future__ import annotations

from fdp.cli import run_command


def train() -> int:
    from fdp.train import main

    return run_command(main, "fdp-train")


def evaluate() -> int:
    from fdp.evaluate import main

    return run_command(main, "fdp-evaluate")


def export() -> int:
    from fdp.export import main

    return run_command(main, "fdp-export")


def preprocess() -> int:
    from fdp.preprocess import main

    return run_command(main, "fdp-preprocess")


def synthesize() -> int:
    from fdp.synthesis.synthetic import main

    return run_command(main, "fdp-synthesize")


def heldout() -> int:
    from fdp.synthesis.heldout import main

    return run_command(main, "fdp-heldout")


def long_videos() -> int:
    from fdp.synthesis.long_videos import main

    return run_command(main, "fdp-long-videos")


def recode() -> int:
    from fdp.synthesis.recode import main

    return run_command(main, "fdp-recode")


def assets() -> int:
    from fdp.assets import main

    return run_command(main, "fdp-assets")
