"""What a batch tells its caller while it runs: :class:`BatchEvents`, whose methods do nothing until a
caller overrides them (``vps segment`` shows them as progress bars and one-line messages)."""

from __future__ import annotations


class BatchEvents:
    """Called by :func:`~vpscli.batch.jobs.gather_jobs` and :func:`~vpscli.batch.runner.run_batch`; the
    local backend calls the per-video methods from each video's thread."""

    def input_failed(self, error) -> None:
        """An input named no video it could read (``error``: its :class:`~vpscli.errors.VpsError`); the
        batch goes on without it."""

    def video_failed(self, error) -> None:
        """A video failed (``error``: its :class:`~vpscli.errors.VpsError`); the batch goes on."""

    def video_finished(self, report) -> None:
        """A video finished or was skipped (``report``: its :class:`~vpscli.engine.VideoReport`)."""

    def warning(self, message: str) -> None:
        """Lost, missing or partial data, or outputs other than asked for."""

    def notice(self, message: str) -> None:
        """Information: never a loss of data."""

    def running(self, message: str) -> None:
        """Which model and weights run, and where."""

    def video_started(self, source) -> None:
        """A video starts (local backend)."""

    def frame_done(self, source, result) -> None:
        """A video's frame was decided and its outputs queued (local backend)."""

    def video_done(self, source) -> None:
        """A video ended: finished, skipped or failed (local backend)."""

    def progress(self, done: int, failed: int, frames: int) -> None:
        """Videos finished and failed so far, frames segmented over all tasks (Ray backend)."""
