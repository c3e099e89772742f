from __future__ import annotations

import pytest

from vpscli.paths import data_dir


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: pass --runslow to run")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _threads_of_the_session():
    """Every test runs at the thread count the suite was started with. ``vps segment``'s engine sets
    torch's threads (CPUs − 1) and OpenCV's (1) for the process; without this, every test after the first
    in-process Segmenter would run single-threaded, and the suite's run at the machine's default thread
    count would not be one."""
    import cv2
    import torch

    torch_threads, cv2_threads = torch.get_num_threads(), cv2.getNumThreads()
    yield
    torch.set_num_threads(torch_threads)
    cv2.setNumThreads(cv2_threads)


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """The suite's own cache folder (the decoded training data of ``vps train``): tests never
    write to, or read from, the user's ``~/.cache/vps``."""
    import os

    old = os.environ.get("VPS_CACHE")
    os.environ["VPS_CACHE"] = str(tmp_path_factory.mktemp("vps-cache"))
    yield
    if old is None:
        os.environ.pop("VPS_CACHE", None)
    else:
        os.environ["VPS_CACHE"] = old


@pytest.fixture(autouse=True, scope="session")
def _torch_backend_by_default():
    """The suite runs its models on torch unless a test names a backend (``tests/test_backends.py``
    compares the compiled backends with it, and runs ``--backend auto``): the other tests' exact
    expectations are torch's numbers, with or without OpenVINO installed."""
    import os

    old = os.environ.get("VPS_BACKEND")
    os.environ["VPS_BACKEND"] = "torch"
    yield
    if old is None:
        os.environ.pop("VPS_BACKEND", None)
    else:
        os.environ["VPS_BACKEND"] = old


@pytest.fixture(scope="session")
def vps_data():
    """The public data folder (``VPS_DATA`` or ``../shared/data``); skips when absent."""
    root = data_dir()
    if not root.is_dir():
        pytest.skip(f"public data not found at {root} (set VPS_DATA)")
    return root


@pytest.fixture(scope="session")
def clip(tmp_path_factory):
    """Synthetic clips with exact ground truth: ``vid.mp4`` (11 frames, 96×64) and the frame folder
    ``Frame/odd`` (6 frames, 101×75)."""
    from vpscli.synth import SynthConfig, write_clip

    d = tmp_path_factory.mktemp("clip")
    write_clip(d, SynthConfig(frames=11, width=96, height=64, seed=2), "mp4", "vid")
    write_clip(d, SynthConfig(frames=6, width=101, height=75, seed=3), "frames", "odd")
    return d


@pytest.fixture(scope="session")
def weights(tmp_path_factory):
    """A checkpoint per model at a tiny size (``tests._models.TINY``): seeded weights with calibrated
    BatchNorm, so that probabilities lie inside (0, 1) as a trained model's do."""
    from tests._models import TINY, trained_like
    from vpscli.models import save_checkpoint

    d = tmp_path_factory.mktemp("w")
    return {
        name: save_checkpoint(trained_like(name, size), d / f"{name}.safetensors")
        for name, size in TINY.items()
    }


@pytest.fixture(scope="session")
def video_dir(tmp_path_factory):
    """Two synthetic SUN-SEG cases of 12 frames (96×128), for training and its sources (read only)."""
    from vpscli.synth import SynthConfig, write_clip

    root = tmp_path_factory.mktemp("video")
    for i in range(2):
        write_clip(
            root, SynthConfig(frames=12, width=128, height=96, seed=i, text=False), "frames", f"case{i}"
        )
    return root
