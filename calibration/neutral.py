"""A user's neutral face, measured once: the resting distribution of every spotting feature, stored as JSON.

The spotter states its thresholds in units of resting noise: how much a region's optical flow, the lids, the jaw,
the head pose and the light vary while this person sits still, relaxed, blinking normally. A profile records that
spread (median and MAD-based scale of each feature), the blink rate, and the versions of the aligner and spotter
that measured it: features from another aligner or spotter are not the same numbers, so such a profile is refused
rather than silently misread. `python run_live.py --calibrate SECONDS --user NAME` records one.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fdp.errors import ConfigError

PROFILE_FORMAT = "fdp-live/neutral-profile/1"
ENV_PROFILES = "FDP_PROFILES_DIR"
MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution times this is its standard deviation
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def default_profiles_dir() -> Path:
    """`$FDP_PROFILES_DIR`, else `$XDG_DATA_HOME/fdp-live/profiles`, else `~/.local/share/fdp-live/profiles`."""
    if os.environ.get(ENV_PROFILES):
        return Path(os.environ[ENV_PROFILES]).expanduser()
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data).expanduser() / "fdp-live" / "profiles"


def profile_path(user: str, folder: Path | None = None) -> Path:
    """Where `user`'s profile lives; the name must be a plain file name (letters, digits, `_.-`)."""
    if not _NAME.match(user):
        raise ConfigError(f"--user {user!r}: use letters, digits, '_', '.' or '-' (up to 64), starting with a "
                          "letter or digit")
    return (folder if folder is not None else default_profiles_dir()) / f"{user}.json"


@dataclass(frozen=True, eq=False)
class RestingNoise:
    """Robust location and spread of each feature while nothing happens."""

    names: tuple[str, ...]
    median: np.ndarray  # (F,)
    scale: np.ndarray  # (F,) MAD * 1.4826: one standard deviation for normal noise, robust to the odd blink
    samples: int

    @classmethod
    def from_samples(cls, names: tuple[str, ...], samples: np.ndarray) -> RestingNoise:
        """From (n, F) feature vectors measured at rest."""
        samples = np.asarray(samples, np.float64)
        if samples.ndim != 2 or samples.shape[1] != len(names) or len(samples) == 0:
            raise ValueError(f"expected (n, {len(names)}) samples, got {samples.shape}")
        median = np.median(samples, axis=0)
        scale = MAD_TO_SIGMA * np.median(np.abs(samples - median), axis=0)
        return cls(tuple(names), median, scale, int(len(samples)))

    def excess(self, values: np.ndarray) -> np.ndarray:
        """How far each value lies above its resting median (same units as the features)."""
        return np.asarray(values, np.float64) - self.median


@dataclass(frozen=True, eq=False)
class NeutralProfile:
    """One user's resting noise, with what it was measured with."""

    user: str
    noise: RestingNoise
    blinks_per_min: float
    seconds: float
    frames: int
    aligner_version: str
    spotter_version: str
    source: str
    created_unix: float

    def to_json(self) -> str:
        return json.dumps({
            "format": PROFILE_FORMAT, "user": self.user, "aligner_version": self.aligner_version,
            "spotter_version": self.spotter_version, "source": self.source, "seconds": round(self.seconds, 3),
            "frames": self.frames, "blinks_per_min": round(self.blinks_per_min, 2),
            "created_unix": round(self.created_unix, 3),
            "features": {name: {"median": float(m), "scale": float(s)}
                         for name, m, s in zip(self.noise.names, self.noise.median, self.noise.scale)},
            "samples": self.noise.samples}, indent=2)

    def save(self, path: Path) -> Path:
        """Write atomically (a crash never leaves half a profile); one line if the folder cannot be written."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(path.name + ".partial")
            partial.write_text(self.to_json())
            partial.replace(path)
        except OSError as error:
            raise ConfigError(f"profile {path}: cannot write it ({error.strerror or error}); pass --profiles DIR "
                              "with a folder you can write") from None
        return path


def new_profile(user: str, names: tuple[str, ...], samples: np.ndarray, blinks: int, seconds: float,
                aligner_version: str, spotter_version: str, source: str) -> NeutralProfile:
    """A profile from the feature vectors of a calibration recording."""
    noise = RestingNoise.from_samples(names, samples)
    return NeutralProfile(user, noise, 60.0 * blinks / max(seconds, 1e-9), seconds, int(len(samples)),
                          aligner_version, spotter_version, source, time.time())


def load_profile(path: Path, names: tuple[str, ...], aligner_version: str, spotter_version: str) -> NeutralProfile:
    """Read a profile and refuse, in one line, one that this aligner and spotter cannot use."""
    redo = f"record it again with --calibrate SECONDS --user {path.stem}"
    if not path.is_file():
        raise ConfigError(f"no neutral profile {path}; {redo} (or leave --user out to learn a running baseline)")
    try:
        data = json.loads(path.read_text())
        if data.get("format") != PROFILE_FORMAT:
            raise ValueError(f"format {data.get('format')!r}")
        features = data["features"]
        median = np.array([features[name]["median"] for name in names], np.float64)
        scale = np.array([features[name]["scale"] for name in names], np.float64)
    except (ValueError, KeyError, TypeError, OSError) as error:
        raise ConfigError(f"neutral profile {path} is not an FDP Live profile ({error}); {redo}") from None
    for what, found, wanted in (("aligner", data.get("aligner_version"), aligner_version),
                                ("spotter", data.get("spotter_version"), spotter_version)):
        if found != wanted:
            raise ConfigError(f"neutral profile {path} was made with {what} {found!r}, this FDP Live runs "
                              f"{wanted!r}; {redo}")
    return NeutralProfile(
        user=str(data.get("user", path.stem)), noise=RestingNoise(names, median, scale, int(data.get("samples", 0))),
        blinks_per_min=float(data.get("blinks_per_min", 0.0)), seconds=float(data.get("seconds", 0.0)),
        frames=int(data.get("frames", 0)), aligner_version=aligner_version, spotter_version=spotter_version,
        source=str(data.get("source", "")), created_unix=float(data.get("created_unix", 0.0)))
