"""What the spotting crop's margin costs: measuring a face and comparing it with a reference frame (the flow, the
rigid fit, the nuisance signals), at the template's own framing and with the shipped margin, side by side.

    python -m benchmarks.bench_spotting_crop      # WolfgangLanger_Pexels.mp4, frames 0.3 s apart, interleaved

The margin keeps the outline and temples the rigid fit reads inside the crop (`measures.spotting_settings`), so
the flow runs on a larger crop; the spotter runs this once per frame, twice while one face half is busy.
"""

from __future__ import annotations

from benchmarks.bench_align import read_video
from benchmarks.timing import interleaved, machine_line
from fdp.align import FaceAligner
from fdp.config import AlignerSettings
from realtime.spotting import SpotterSettings
from realtime.spotting.measures import FlowMeter, compare, measure_face, spotting_settings


def main() -> int:
    frames, fps = read_video("WolfgangLanger_Pexels.mp4")
    lag = max(1, round(SpotterSettings().lag_s * fps))
    with FaceAligner(AlignerSettings(), running_mode="video") as aligner:
        faces = [aligner.process(frame, timestamp_ms=int(i * 1000 / fps)) for i, frame in enumerate(frames[:lag + 1])]
    (ref_frame, ref_face), (cur_frame, cur_face) = ((frames[i], faces[i][0].face) for i in (0, lag))
    settings = SpotterSettings()
    meter = FlowMeter(settings.crop_size)
    cases = {}
    framings = {"template framing (margin 0)": 0, f"shipped margin {settings.margin_px} px": settings.margin_px}
    for name, margin in framings.items():
        framing = spotting_settings(settings.crop_size, margin)
        reference = measure_face(ref_frame, ref_face, 0.0, 0, framing)

        def case(framing=framing, reference=reference) -> None:
            compare(reference, measure_face(cur_frame, cur_face, lag / fps, lag, framing), meter)

        cases[f"{name}, {framing.crop_size} px crop"] = case
    timings = interleaved(cases, rounds=40)
    print(machine_line())
    first = next(iter(timings.values()))
    print(f"measure + compare per frame, one face, frames {lag} apart, {first.samples} calls each")
    base = first.median_ms
    for name, t in timings.items():
        print(f"  {name:>44}: median {t.median_ms:.2f} ms, p90 {t.p90_ms:.2f} ms ({t.median_ms / base:.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
