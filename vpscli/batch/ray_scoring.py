"""``vps evaluate --ray``: one Ray task per sequence, scoring its frames as a local run does."""

from __future__ import annotations

from pathlib import Path

from vpscli.batch.ray_cluster import cancel_tasks, import_ray


def score_sequences(keys: list, tasks: list):
    """``vps evaluate --ray``'s scorer (:func:`~vpscli.metrics.runner.evaluate_plan`): one Ray task per
    sequence (consecutive frames of one ``(split, case)``), each frame's scores yielded in the order given.
    Tasks still running when the caller stops (an error, Ctrl-C) are cancelled."""
    from vpscli.metrics.runner import score_frames

    ray = import_ray()
    remote = ray.remote(score_frames).options(num_cpus=1, max_retries=2)
    tasks = [_absolute_task(t) for t in tasks]  # workers do not run in this folder
    refs, start = [], 0
    for end in range(1, len(tasks) + 1):
        if end == len(tasks) or keys[end] != keys[start]:
            refs.append(remote.remote(tasks[start:end]))
            start = end
    done = 0
    try:
        for ref in refs:
            yield from ray.get(ref)
            done += 1
    finally:
        if done < len(refs):
            cancel_tasks(ray, refs[done:])


def _absolute_task(task: tuple) -> tuple:
    gt_path, pred_paths, families = task
    return Path(gt_path).absolute(), [None if p is None else Path(p).absolute() for p in pred_paths], families
