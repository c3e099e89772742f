"""Ray for ``vps segment --ray`` and ``vps evaluate --ray``: importing it (an optional extra), joining a
cluster, checking what it can grant, and cancelling tasks as a local Ctrl-C stops work."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from vpscli.errors import InputError, UsageError

RAY_FIX = "pip install 'vps[ray]'"


def import_ray():
    """The ``ray`` module, or a one-line error naming the extra to install.

    Ray reports usage statistics from the clusters it starts unless told not to; vps uses no network at
    run time, so it turns them off (``RAY_USAGE_STATS_ENABLED=0``, inherited by the Ray processes it
    starts) unless the user set that variable."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    _token_auth_when_token_available()  # before Ray reads its configuration, at import
    try:
        import ray
    except ImportError:
        raise UsageError("--ray needs Ray, which is not installed", fix=RAY_FIX) from None
    return ray


def check_cluster_resources(resources: dict, gpus_per_video: float, cpus_per_video: float) -> None:
    """Refuse a request no node of the cluster could ever grant (Ray would queue the tasks forever):
    ``resources`` is ``ray.cluster_resources()``, the cluster's totals."""
    gpus, cpus = float(resources.get("GPU", 0.0)), float(resources.get("CPU", 0.0))
    if gpus_per_video > gpus:
        raise UsageError(
            f"--gpus-per-video {gpus_per_video:g} asks for more GPUs than the Ray cluster has "
            f"({gpus:g}): its tasks would wait forever",
            fix="leave out --gpus-per-video to run on CPUs, or join a cluster with GPUs",
        )
    if cpus_per_video > cpus:
        raise UsageError(
            f"--cpus-per-video {cpus_per_video:g} asks for more CPUs than the Ray cluster has ({cpus:g})",
            fix=f"pass --cpus-per-video {max(cpus, 1):g} or less",
        )


def connect(address: str) -> bool:
    """Join the Ray cluster ``address`` names; True when this call started Ray (and must shut it down).

    ``auto``: the cluster ``RAY_ADDRESS`` or a ``ray start`` on this machine names, else a new Ray
    instance on this machine; ``local``: a new instance on this machine; else a cluster address
    (``HOST:6379``, ``ray://HOST:10001``). A process that already runs Ray (a notebook, the tests) keeps it.
    """
    ray = import_ray()
    if ray.is_initialized():
        return False
    quiet = {"logging_level": logging.WARNING, "log_to_driver": True}
    if address == "local":
        ray.init(include_dashboard=False, **quiet)
        return True
    try:
        ray.init(address=address, **quiet)
    except ConnectionError as e:
        if address != "auto":
            raise InputError(
                f"cannot reach the Ray cluster at {address} ({e})",
                fix="start it with `ray start --head` and pass the address it prints (a cluster with "
                "token authentication also needs its token here: ~/.ray/auth_token or "
                "RAY_AUTH_TOKEN), or use --ray local for a Ray instance on this machine",
            ) from None
        ray.init(include_dashboard=False, **quiet)  # no cluster running: one on this machine
    return True


def _token_auth_when_token_available() -> None:
    """Ray 2.5x clusters started by ``ray start`` use token authentication by default, but a driver given an
    explicit address sends its token only in token mode, which Ray turns on by itself only for ``auto`` and
    local instances (measured with Ray 2.60: ``--ray HOST:PORT`` was refused with InvalidAuthToken while
    ``--ray auto`` joined the same instance). Where a token is available and the user chose no mode, use it;
    Ray reads the mode when it is imported, so this runs before."""
    if os.environ.get("RAY_AUTH_MODE"):
        return
    token_file = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
    if os.environ.get("RAY_AUTH_TOKEN") or token_file.is_file():
        os.environ["RAY_AUTH_MODE"] = "token"


def cancel_tasks(ray, refs: list) -> None:
    """Stop running tasks as a local Ctrl-C stops a video (KeyboardInterrupt in the task: ``run.json`` says
    ``interrupted``), and wait a little for them to record it. Finished tasks are left alone: cancelling
    one races with Ray's own completion of it (a Ray core check failure, ray-project/ray#54527)."""
    try:
        _, refs = ray.wait(refs, num_returns=len(refs), timeout=0)
    except Exception:
        pass
    for ref in refs:
        try:
            ray.cancel(ref)
        except Exception:  # already finished or lost: nothing to stop
            pass
    try:
        ray.wait(refs, num_returns=len(refs), timeout=15)
    except Exception:
        pass
