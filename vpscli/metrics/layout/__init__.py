"""Finding the ground truth and matching predictions to it: what gets evaluated.

In three steps: :mod:`~vpscli.metrics.layout.discover` finds the GT's splits, cases and frames on disk,
:mod:`~vpscli.metrics.layout.match` pairs prediction folders and files with them, and
:mod:`~vpscli.metrics.layout.diagnose` says what did not fit and why; :func:`build_plan` runs them into a
:class:`Plan`.

Ground truth (``GT`` argument), any of:

- a ``GT/`` folder of case folders (one split, named ``.``);
- a dataset root holding ``GT/`` folders at any depth: SUN-SEG ``TestEasyDataset/Seen/GT/<case>/``,
  ``TestHardDataset/Unseen/GT/...``, or ``<split>/GT/<case>``; each ``GT`` folder is a split named by its
  parent's path relative to the root (``TestEasyDataset/Seen``);
- a folder of case folders not named ``GT``, or one case folder of PNGs (a single sequence).

Predictions (``PRED`` argument) mirror the splits, with or without a method level:
``PRED/<split>/<case>/<frame>.png`` or ``PRED/<method>/<split>/<case>/<frame>.png`` (several methods at
once). Each split may hold a ``Pred/`` level (the PNS-Net MATLAB layout); a flat folder of PNGs (one
``masks/`` folder) is matched to GT frames by file name. A prediction has the GT frame's file name.

``vps segment`` output: a case folder holding ``probs/`` (``--save-prob``: ``floor(255·p)``, what the
benchmark scores) and/or ``masks/`` (thresholded 0/255) is scored from ``probs/`` when it exists, else from
``masks/`` (``use_masks``, ``--use-masks``: ``masks/`` whenever it exists); the plan's notes say which, and
that binary masks flatten every threshold curve. A run folder whose ``run.json`` says the run is partial or
unfinished gets a warning (:attr:`Plan.diagnostics`).

File names (the toolbox's rules, plus hints where it would fail):

- GT frames are the non-hidden files whose name ends in ``.png`` — lower case, as the toolbox's
  ``glob('*.png')`` sees them on Linux. ``0001.PNG`` in a GT folder is not a frame; it is reported, with
  the fix (rename it).
- A prediction is the GT frame's name in the prediction folder. Its extension may differ in letter case
  (``0001.PNG`` for ``0001.png``): it is used, and a note says so — the toolbox opens the GT name in the
  prediction folder, which finds ``0001.PNG`` on case-insensitive file systems (macOS, Windows) and
  fails on Linux. Another extension (``0001.jpg``) is not a prediction: the missing-predictions error
  names such files and says to save the maps as PNG (JPEG is lossy).

Stray files and empty folders next to the cases, which crash the toolbox, are skipped and reported.
"""

from vpscli.metrics.layout.discover import Sequence, Split
from vpscli.metrics.layout.plan import Plan, build_plan

__all__ = ["Plan", "Sequence", "Split", "build_plan"]
