"""The upper and the lower face on timelines of their own, and how their intervals become one face's events.

Followed as one, the face's regions hold an interval open for as long as any of them moves: a syllable or a blink
just before or after a micro-expression elsewhere joined it into one movement longer than 0.5 s, refused whole as
a macro-expression (11 of 17 misses on the tune videos). So each region group (`regions.REGION_GROUPS`) opens,
closes and judges its own intervals, each against its own frozen reference (`spotter.FaceSpotter`), and this module
joins them again:

- one micro-expression often moves both groups (a smile narrows the eyes, surprise drops the jaw a little), so
  intervals of the groups that overlap in time are one event: their union, the stronger one's apex (or the
  stronger one alone, should the union outlast a micro-expression). An interval therefore waits until no other
  group is still deciding about a movement that began before it ended;
- a macro-expression in one group (a held smile or frown: too long, and no nuisance explains it) makes whatever
  the other group spotted during it a part of it, refused too. A long stretch of talking or a held glance does not:
  finding the micro-expression beside those is the point of the split.
"""

from __future__ import annotations

from collections.abc import Sequence

from realtime.spotting.detector import DetectorStep, Refusal, SpottedInterval

MACRO_MEMORY_S = 3.0  # a refused macro-expression still vetoes intervals overlapping it this long after its end


def _overlap(a: SpottedInterval | Refusal, b: SpottedInterval | Refusal) -> bool:
    return a.onset_s <= b.offset_s and b.onset_s <= a.offset_s


def _joined(intervals: list[SpottedInterval], max_duration_s: float) -> SpottedInterval:
    """One event from overlapping intervals of different groups."""
    strongest = max(intervals, key=lambda i: i.peak_z)
    first = min(intervals, key=lambda i: i.onset_s)
    last = max(intervals, key=lambda i: i.offset_s)
    if last.offset_s - first.onset_s > max_duration_s:
        return strongest
    others = [r for i in sorted(intervals, key=lambda i: -i.peak_z) for r in i.regions]
    return SpottedInterval(
        onset_frame=first.onset_frame, apex_frame=strongest.apex_frame, offset_frame=last.offset_frame,
        onset_s=first.onset_s, apex_s=strongest.apex_s, offset_s=last.offset_s, peak_z=strongest.peak_z,
        peak_fw=strongest.peak_fw, regions=tuple(dict.fromkeys(others)))


class EventMerger:
    """Joins the groups' intervals of one face into events (single writer: the face's spotter)."""

    def __init__(self, max_duration_s: float) -> None:
        self.max_duration_s = max_duration_s
        self._pending: list[SpottedInterval] = []
        self._macros: list[Refusal] = []

    def push(self, t_s: float, steps: Sequence[DetectorStep], busy_since_s: Sequence[float | None],
             ) -> tuple[list[SpottedInterval], list[Refusal]]:
        """One frame's step of every group, and when each group's undecided movement began (None: none):
        the events ready now, and every refusal of this frame (the groups' own and the vetoed intervals)."""
        refusals = [step.refusal for step in steps if step.refusal is not None]
        self._macros = [m for m in self._macros if m.offset_s >= t_s - MACRO_MEMORY_S]
        self._macros += [r for r in refusals if r.cause == "macro"]
        self._pending += [step.interval for step in steps if step.interval is not None]
        refusals += self._veto()
        if not self._pending:
            return [], refusals
        end_s = max(i.offset_s for i in self._pending)
        if any(since is not None and since <= end_s for since in busy_since_s):
            return [], refusals
        return self._release(), refusals

    def flush(self, last: Sequence[SpottedInterval]) -> list[SpottedInterval]:
        """At the end of the stream: every interval still waiting, with the groups' unconfirmed `last` ones."""
        self._pending += list(last)
        self._veto()
        return self._release()

    def _veto(self) -> list[Refusal]:
        vetoed = [i for i in self._pending if any(_overlap(i, m) for m in self._macros)]
        self._pending = [i for i in self._pending if i not in vetoed]
        return [Refusal("macro", i.onset_s, i.offset_s) for i in vetoed]

    def _release(self) -> list[SpottedInterval]:
        """The pending intervals as events: those that overlap (directly or through another) joined."""
        events: list[list[SpottedInterval]] = []
        for interval in sorted(self._pending, key=lambda i: i.onset_s):
            if events and interval.onset_s <= max(i.offset_s for i in events[-1]):
                events[-1].append(interval)
            else:
                events.append([interval])
        self._pending = []
        return [_joined(group, self.max_duration_s) for group in events]
