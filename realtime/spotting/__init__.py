"""Class-agnostic micro-expression spotting: regional optical flow with nuisance channels (blinks, talking, head
motion, light), thresholds in units of the user's resting noise, intervals with onset, apex and offset."""

from realtime.spotting.detector import Refusal, SpottedInterval, SpotterSettings
from realtime.spotting.measures import FEATURE_NAMES
from realtime.spotting.spotter import SPOTTER_NAME, SPOTTER_VERSION, FaceSpotter, SpotStep

__all__ = ["FEATURE_NAMES", "SPOTTER_NAME", "SPOTTER_VERSION", "FaceSpotter", "Refusal", "SpotStep",
           "SpottedInterval", "SpotterSettings"]
