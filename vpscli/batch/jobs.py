"""A batch's jobs: every input of a command line and its manifest, expanded and named as one run names
them, each with the :class:`~vpscli.engine.ModelConfig` and :class:`~vpscli.engine.SegmentOptions` it is
segmented with (a manifest's columns vary them per video), then a shard's share."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from vpscli.batch.events import BatchEvents
from vpscli.batch.manifest import ManifestEntry, take_shard
from vpscli.engine.options import ModelConfig, SegmentOptions
from vpscli.errors import UsageError, VpsError

if TYPE_CHECKING:
    from vpscli.io.sources import FrameSource

#: each manifest column (:data:`~vpscli.batch.manifest.CSV_OPTION_COLUMNS`) and the configuration field it sets
MANIFEST_FIELDS = {
    "model": (ModelConfig, "model"),
    "threshold": (ModelConfig, "threshold"),
    "min_persistence": (SegmentOptions, "min_persistence"),
}


@dataclass(frozen=True)
class VideoJob:
    """One video of a batch: its source (already given its output name) and how it is segmented."""

    source: FrameSource
    model: ModelConfig
    options: SegmentOptions


def with_columns(
    model: ModelConfig, options: SegmentOptions, columns: dict
) -> tuple[ModelConfig, SegmentOptions]:
    """``model`` and ``options`` with a manifest row's ``columns`` applied (:data:`MANIFEST_FIELDS`)."""
    model_fields = {
        MANIFEST_FIELDS[c][1]: v for c, v in columns.items() if MANIFEST_FIELDS[c][0] is ModelConfig
    }
    option_fields = {
        MANIFEST_FIELDS[c][1]: v for c, v in columns.items() if MANIFEST_FIELDS[c][0] is SegmentOptions
    }
    return replace(model, **model_fields), replace(options, **option_fields)


def gather_jobs(
    inputs: list[str],
    entries: list[ManifestEntry],
    model: ModelConfig,
    options: SegmentOptions,
    *,
    fps: float | None = None,
    shard: tuple[int, int] | None = None,
    absolute: bool = False,
    events: BatchEvents | None = None,
) -> tuple[list[VideoJob], dict[str, VpsError]]:
    """Every input of ``inputs`` and the manifest ``entries``, expanded and named as one run names them, then
    the ``shard``'s share. Returns ``(jobs, failures)``: a missing input fails alone (told to ``events`` as
    it is found). ``absolute``: sources by absolute path (Ray workers do not run in this folder).

    Raises :class:`~vpscli.errors.UsageError` when one video is listed twice with different settings."""
    from vpscli.io.sources import discover_sources, distinct_names

    events = events or BatchEvents()
    sources: list[FrameSource] = []
    failures: dict[str, VpsError] = {}
    # per video (its resolved path): its settings, and where they were given
    settings: dict[Path, tuple[ModelConfig, SegmentOptions]] = {}
    origin: dict[Path, str] = {}
    given = [(t, {}, "the command line") for t in inputs] + [
        (e.path, e.options, e.where or "the manifest") for e in entries
    ]
    for text, columns, where in given:
        text = str(Path(text).expanduser().absolute()) if absolute else text
        try:
            found = discover_sources([text], fps=fps)
        except VpsError as e:
            failures[text] = e
            events.input_failed(e)
            continue
        for s in found:
            key, wanted = s.path.resolve(), with_columns(model, options, columns)
            if key in settings and settings[key] != wanted:  # one video, two settings: never a silent choice
                raise UsageError(
                    f"{s.path} is listed twice with different settings ({origin[key]} and {where})",
                    fix="keep one row per video, or give both rows the same values",
                )
            settings.setdefault(key, wanted)
            origin.setdefault(key, where)
        sources.extend(found)
    if fps is not None:
        _warn_fps_of_videos(sources, fps, events)
    sources = take_shard(distinct_names(sources), shard)  # names over all inputs: the same in every shard
    return [VideoJob(s, *settings[s.path.resolve()]) for s in sources], failures


def _warn_fps_of_videos(sources: list, fps: float, events: BatchEvents) -> None:
    from vpscli.io.sources import VideoFileSource

    videos = [s.path.name for s in sources if isinstance(s, VideoFileSource)]
    if videos:
        events.warning(
            f"--fps {fps:g} applies to frame folders only: {len(videos)} video file(s) keep their own "
            f"timestamps ({', '.join(videos[:3])}{' …' if len(videos) > 3 else ''})"
        )
