"""The package layout rules of STYLE.md: our `realtime` is the one imported, and `fdp` stays independent."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_realtime_package_is_ours_not_pypi():
    import realtime

    assert Path(realtime.__file__).resolve().is_relative_to(REPO)


def test_fdp_import_does_not_pull_realtime_or_engines():
    code = (
        "import sys, pkgutil, importlib, fdp\n"
        "for m in pkgutil.walk_packages(fdp.__path__, 'fdp.'):\n"
        "    importlib.import_module(m.name)\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in ('realtime', 'engines', 'calibration'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == ""
