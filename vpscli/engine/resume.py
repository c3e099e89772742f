"""What a resumed run already has: :class:`ResumePlan`, built once before the first frame and consumed
by the segmenter (which frames it need not predict), the frame decision (which frames stand as the
earlier run wrote them) and the sinks (which files are on disk, and the masks of finished frames).

A frame finished by the earlier run (:meth:`~vpscli.io.run_folder.RunFolder.finished`: whole PNGs and a
``frames.csv`` row) is not predicted again, unless a later clip needs it to rebuild the model's state
(:meth:`~vpscli.models.base.ModelSpec.replay_frames`); its row stands for it, and its ``flagged`` cell
feeds the persistence filter as the model's flag would, so a resumed run decides every frame as an
uninterrupted one.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Callable

from vpscli.io.masks import read_mask
from vpscli.io.run_folder import RunFolder

if TYPE_CHECKING:
    from vpscli.engine.video_run import FrameResult
    from vpscli.io.frames import Frame


class ResumePlan:
    """The earlier run's finished frames in ``folder`` (none for a run that is not resumed).

    Example: ``ResumePlan(RunFolder("out/clip"), save_prob=False, resume=True).finished`` → frame names.
    """

    def __init__(self, folder: RunFolder, save_prob: bool, resume: bool):
        self.folder, self.save_prob, self.resume = folder, save_prob, resume
        self.rows: dict[str, dict] = folder.rows() if resume else {}
        #: names of the frames the earlier run finished
        self.finished: set[str] = folder.finished(save_prob, self.rows) if self.rows else set()

    @property
    def skip(self) -> Callable[[Frame], bool] | None:
        """:meth:`~vpscli.engine.Segmenter.run`'s ``skip``: given only when there are earlier rows (else
        every frame is predicted)."""
        return (lambda frame: frame.name in self.finished) if self.rows else None

    def is_finished(self, name: str) -> bool:
        return name in self.finished

    def saved_row(self, name: str) -> dict:
        """The earlier run's ``frames.csv`` row of a finished frame (all cells strings)."""
        return self.rows[name]

    def flagged(self, name: str) -> bool:
        """Whether the model flagged a finished frame, as its row says."""
        return RunFolder.row_flagged(self.rows[name])

    def has_pngs(self, name: str) -> bool:
        """A resumed run finds the frame's PNGs whole on disk (written before an interrupt): not written
        again."""
        return self.resume and self.folder.has_pngs(name, self.save_prob)

    def with_saved_mask(self, result: FrameResult) -> FrameResult:
        """``result``, with the mask of a finished frame that was not predicted again read back from
        ``masks/`` and its ``max_prob`` from its row (a sink that draws every frame needs them)."""
        if result.predicted or not self.is_finished(result.name):
            return result
        mask = read_mask(self.folder.mask_path(result.name)).array > 0
        return replace(result, mask=mask, max_prob=float(self.rows[result.name]["max_prob"]))
