"""The one way every entry point turns expected failures into a single line and an exit status."""

from __future__ import annotations

import sys
from collections.abc import Callable

from fdp.errors import FDPError


def run_main(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> int:
    """Run `main`; print an `FDPError` as one line on stderr (exit 1); Ctrl-C exits 130 quietly."""
    try:
        return int(main(argv) or 0)
    except FDPError as error:
        print(f"{type(error).__name__}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
