"""The detection view as ``vps evaluate`` prints it: the columns, one row per video, a pooled row per split and
method, and the line under the tables that says how a frame counts as detected."""

from __future__ import annotations

from vpscli.metrics.detection import DatasetDetection, SequenceDetection

COLUMNS = (
    "Sequence",
    "frames",
    "GT+ frames",
    "Sen",
    "Spe",
    "polyps detected",
    "time to first detection",
    "false alarms",
)
#: The columns of names and lists; the others hold numbers.
LEFT_ALIGNED = ("Sequence", "time to first detection")
#: How many episodes a video's row lists.
EPISODES_SHOWN = 4


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def sequence_row(seq: SequenceDetection) -> list[str]:
    """One video: frame counts, Sen/Spe, episodes detected, each episode's time to first detection (frames,
    and seconds when the frame rate is known), false-alarm episodes on a polyp-free video."""
    delays = []
    for e in seq.episodes:
        seconds = seq.seconds(e.delay)
        delays.append(
            "missed" if e.missed else f"{e.delay}" + (f" ({seconds:.2f} s)" if seconds is not None else "")
        )
    shown = ", ".join(delays[:EPISODES_SHOWN]) + (
        f", … ({len(delays)} episodes)" if len(delays) > EPISODES_SHOWN else ""
    )
    alarms = "-"
    if seq.negative:
        rate = seq.false_alarms_per_minute
        alarms = f"{seq.false_alarm_episodes}" + (f" ({rate:.2f}/min)" if rate is not None else "")
    detected = sum(not e.missed for e in seq.episodes)
    return [
        seq.name,
        str(seq.frames),
        str(seq.gt_positive),
        _ratio(seq.sensitivity),
        _ratio(seq.specificity),
        f"{detected}/{len(seq.episodes)}" if seq.episodes else "-",
        shown or "-",
        alarms,
    ]


def pooled_row(dataset: DatasetDetection) -> list[str]:
    """The videos of a split pooled (``all``): the median time to first detection instead of a list."""
    d = dataset.to_json()
    median = d["median_time_to_first_detection_frames"]
    alarms = "-"
    if d["negative_videos"]:
        rate = d["false_alarm_episodes_per_minute"]
        alarms = f"{d['false_alarm_episodes']}" + (f" ({rate:.2f}/min)" if rate is not None else "")
    return [
        "all",
        str(d["frames"]),
        str(d["gt_positive_frames"]),
        _ratio(d["sensitivity"]),
        _ratio(d["specificity"]),
        f"{d['polyp_episodes_detected']}/{d['polyp_episodes']}" if d["polyp_episodes"] else "-",
        "-" if median is None else f"median {median:g} frames",
        alarms,
    ]


def detection_line(view: dict[tuple[str, str], DatasetDetection]) -> str:
    """The line under the detection tables: what was binarised how, and what each column counts."""
    sources = sorted({s.source for d in view.values() for s in d.sequences})
    return (
        f"detection: frame detected when its predicted mask is non-empty ({', '.join(sources)}); every GT "
        "frame, ends kept; Sen/Spe over frames (pooled for all); time to first detection from each GT "
        "episode's first frame; false alarms: episodes of detected frames on videos with an empty GT"
    )
