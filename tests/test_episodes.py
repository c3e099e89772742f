"""Episodes, the persistence filter, the false-alarm summary and time to first detection, as pure functions."""

from __future__ import annotations

import random

import pytest

from vpscli.episodes import (
    EpisodeDetection,
    PersistenceFilter,
    Run,
    episode_detections,
    flag_summary,
    persistent,
    runs,
)


def flags(text: str) -> list[bool]:
    """``"..##.#"`` → ``[F, F, T, T, F, T]``: one character per frame, ``#`` flagged."""
    return [c == "#" for c in text]


def text(values) -> str:
    return "".join("#" if v else "." for v in values)


def stream(values: list[bool], n: int) -> tuple[list[bool], int]:
    """Run the streaming filter; returns the kept flags in emission order and the most frames it ever held."""
    f: PersistenceFilter[int] = PersistenceFilter(n)
    out: list[tuple[int, bool]] = []
    most = 0
    for i, v in enumerate(values):
        out += f.push(i, v)
        most = max(most, f.held)
    out += f.finish()
    assert [i for i, _ in out] == list(range(len(values))), "every frame once, in order"
    return [k for _, k in out], most


def test_runs_find_every_maximal_run_including_the_edges():
    assert runs(flags("##..###.#")) == [Run(0, 2), Run(4, 3), Run(8, 1)]
    assert runs(flags("....")) == [] and runs([]) == []
    assert runs(flags("####")) == [Run(0, 4)]


@pytest.mark.parametrize(
    "n, expected",
    [
        (1, "##..###.#...####"),
        (2, "##..###.....####"),
        (3, "....###.....####"),
        (4, "............####"),
        (5, "................"),
    ],
)
def test_persistent_keeps_runs_of_at_least_n_frames(n, expected):
    # a run at the start (2), in the middle (3 and 1), and at the end of the video (4)
    assert text(persistent(flags("##..###.#...####"), n)) == expected


def test_n_1_is_the_identity_and_n_beyond_the_video_clears_everything():
    values = flags("#.##.###")
    assert persistent(values, 1) == values
    assert persistent(flags("#####"), 6) == [False] * 5
    assert persistent(flags("#####"), 5) == [True] * 5  # exactly the video's length is enough
    assert persistent([], 3) == []


def test_the_streaming_filter_agrees_with_the_pure_one_and_holds_at_most_n_minus_1_frames():
    rng = random.Random(0)
    for _ in range(300):
        values = [rng.random() < 0.6 for _ in range(rng.randint(0, 40))]
        n = rng.randint(1, 9)
        kept, most = stream(values, n)
        assert kept == persistent(values, n), (text(values), n)
        assert most <= n - 1


def test_the_streaming_filter_decides_a_run_as_soon_as_it_reaches_n():
    f: PersistenceFilter[str] = PersistenceFilter(3)
    assert f.push("a", True) == [] and f.push("b", True) == [] and f.held == 2
    assert f.push("c", True) == [("a", True), ("b", True), ("c", True)]  # no waiting for the run's end
    assert f.push("d", True) == [("d", True)] and f.held == 0
    assert f.push("e", False) == [("e", False)]
    assert f.push("f", True) == [] and f.push("g", False) == [("f", False), ("g", False)]
    assert f.push("h", True) == [] and f.finish() == [
        ("h", False)
    ]  # the video ended before the run reached 3
    assert f.finish() == []


def test_n_1_streams_every_frame_at_once():
    f: PersistenceFilter[int] = PersistenceFilter(1)
    assert [f.push(i, v) for i, v in enumerate(flags("#.#"))] == [[(0, True)], [(1, False)], [(2, True)]]
    with pytest.raises(ValueError):
        PersistenceFilter(0)


def test_flag_summary_counts_before_and_after_the_filter():
    before = flags("##..###.#...####.")
    after = persistent(before, 3)
    s = flag_summary(before, after, fps=25.0, expect_negative=True)
    assert (s.frames, s.flagged_before, s.flagged_after) == (17, 10, 7)
    assert (s.episodes_before, s.episodes_after) == (4, 2)
    assert s.longest == Run(12, 4)
    assert s.minutes == pytest.approx(17 / 25 / 60)
    j = s.to_json()
    assert j["suppressed_frames"] == 3
    assert j["longest_episode"] == {"first_frame": 12, "frames": 4, "seconds": 0.16}
    assert j["false_alarm_episodes_per_minute"] == pytest.approx(2 / (17 / 25 / 60), abs=1e-4)
    assert j["false_alarm_episodes_per_minute_before_filter"] == pytest.approx(4 / (17 / 25 / 60), abs=1e-4)


def test_flag_summary_gives_false_alarm_rates_only_for_a_video_said_to_be_polyp_free():
    s = flag_summary(flags("##."), flags("##."), fps=25.0, expect_negative=False)
    assert s.to_json()["false_alarm_episodes_per_minute"] is None
    clean = flag_summary(flags("..."), flags("..."), fps=None, expect_negative=True)
    assert clean.longest is None and clean.to_json()["longest_episode"] is None
    assert clean.to_json()["false_alarm_episodes_per_minute"] is None  # no frame rate: no minutes
    tie = flag_summary(flags("##.##"), flags("##.##"), fps=10.0)
    assert tie.longest == Run(0, 2)  # the first of equally long episodes
    with pytest.raises(ValueError):
        flag_summary([True], [], fps=25.0)


def test_episode_detections_time_to_first_detection_and_misses():
    gt = flags("..####...###..##")
    hit = flags("#...##.....#....")  # a detection before the first episode does not count for it
    assert episode_detections(gt, hit) == [
        EpisodeDetection(2, 4, 2),
        EpisodeDetection(9, 3, 2),
        EpisodeDetection(14, 2, None),
    ]
    assert episode_detections(gt, hit)[2].missed
    assert episode_detections(flags("###"), flags("###")) == [EpisodeDetection(0, 3, 0)]
    assert episode_detections(flags("..."), flags("###")) == []
    with pytest.raises(ValueError):
        episode_detections([True], [])
