"""`vps segment --ray` and `vps evaluate --ray` on a local Ray instance (2 CPUs): the same outputs as a local
run, a failing input reported while the others finish, a killed worker retried or resumed without
recomputing finished videos, evaluate's numbers equal to a local evaluation.

The CLI runs in a subprocess that joins this module's Ray instance by its address (``--ray HOST:PORT``),
as a command on a cluster's head node would; the runs whose worker must die call the library
(:func:`vpscli.batch.runner.run_batch`) in this process, with a frame hook that kills the worker.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests._models import TINY, trained_like
from vpscli.models import save_checkpoint
from vpscli.synth import SynthConfig, write_clip

ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install -e '.[ray]')")
pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def cluster():
    """A local Ray instance with 2 CPUs, without usage statistics, as vps starts its own; its address, for
    the CLI to join."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Three short synthetic clips with ground truth, an unreadable 'video', and tiny pns-plus weights."""
    d = tmp_path_factory.mktemp("ray-clips")
    for i in range(3):
        write_clip(d, SynthConfig(frames=8, width=96, height=64, seed=40 + i), "mp4", f"c{i}")
    (d / "broken.mp4").write_bytes(b"not a video at all" * 100)
    w = save_checkpoint(trained_like("pns-plus", TINY["pns-plus"]), d / "tiny.safetensors")
    return d, w


def vps(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "vpscli", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


class DieAt:
    """A Ray task's frame hook: the worker segmenting video ``name`` exits abruptly (``os._exit``, as a
    killed process) at frame ``frame``, once — ``marker`` records that it did."""

    def __init__(self, name: str, frame: int, marker: Path):
        self.name, self.frame, self.marker = name, frame, marker

    def __call__(self, name: str, result) -> None:
        if name == self.name and result.index >= self.frame and not self.marker.exists():
            self.marker.touch()
            os._exit(1)


def segment_on_ray(inputs, weights, out, address, hook, max_retries: int, overlay: bool = True):
    """``vps segment INPUTS -w WEIGHTS -o OUT --ray ADDRESS --min-persistence 1`` through the library, with
    ``hook`` in the workers; writes ``OUT/batch.json`` and returns the batch's report."""
    from vpscli.batch.jobs import gather_jobs
    from vpscli.batch.runner import BatchReport, RayBackend, run_batch
    from vpscli.engine import ModelConfig, SegmentOptions

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the hook travels to the workers
    model = ModelConfig("pns-plus", weights=Path(weights))
    options = SegmentOptions(out_root=out, min_persistence=1, overlay=overlay)
    jobs, missing = gather_jobs([str(i) for i in inputs], [], model, options, absolute=True)
    report = BatchReport(jobs, out, missing)
    run_batch(jobs, RayBackend(address, max_retries=max_retries, frame_hook=hook), report)
    report.write_json(out / "batch.json", "ray")
    return report


def error_lines(stderr: str) -> set[str]:
    return {line.strip() for line in stderr.splitlines() if line.startswith("error:")}


def test_ray_batch_with_bundled_weights_equals_a_local_run_and_reports_the_bad_input(
    cluster, clips, tmp_path
):
    d, _ = clips
    inputs = [d / "c0.mp4", d / "broken.mp4", d / "c1.mp4", d / "c2.mp4"]
    # the bundled weights; one model thread in both runs (the Ray task's share: 1 CPU → 1 thread), so the
    # numbers are computed alike and the outputs must be equal byte for byte
    local = vps("segment", *inputs, "-o", tmp_path / "local", "--threads", "1", "--save-prob", "-q")
    on_ray = vps("segment", *inputs, "-o", tmp_path / "ray", "--ray", cluster, "--save-prob", "-q")
    assert local.returncode == on_ray.returncode == 3, on_ray.stderr
    bad = [line for line in error_lines(on_ray.stderr) if "broken.mp4: not a readable video" in line]
    assert len(bad) == 1 and bad[0] in error_lines(local.stderr)  # the local run's one-line message
    assert "1 of 4 inputs failed" in on_ray.stderr
    for name in ("c0", "c1", "c2"):
        a, b = tmp_path / "local" / name, tmp_path / "ray" / name
        assert (a / "frames.csv").read_bytes() == (b / "frames.csv").read_bytes()
        for folder in ("masks", "probs"):
            pngs = sorted(p.name for p in (a / folder).iterdir())
            assert len(pngs) == 8 and pngs == sorted(p.name for p in (b / folder).iterdir())
            assert all((a / folder / n).read_bytes() == (b / folder / n).read_bytes() for n in pngs)
        run_a, run_b = (json.loads((x / "run.json").read_text()) for x in (a, b))
        assert run_a["numerics"] == run_b["numerics"] and run_b["status"] == "complete"
    batch = json.loads((tmp_path / "ray" / "batch.json").read_text())
    assert batch["backend"] == "ray" and batch["statuses"] == {"complete": 3, "failed": 1}
    entries = {e["name"]: e for e in batch["entries"]}
    assert entries["broken"]["status"] == "failed" and "broken.mp4" in entries["broken"]["error"]
    for name in ("c0", "c1", "c2"):
        e = entries[name]
        assert e["frames"] == 8 and e["device"] == "cpu" and " node " in e["worker"] and e["attempts"] == 1
        assert e["seconds"] > 0 and e["frames_per_second"] > 0
    local_batch = json.loads((tmp_path / "local" / "batch.json").read_text())
    assert local_batch["backend"] == "local" and local_batch["statuses"] == batch["statuses"]


def test_evaluate_on_ray_gives_the_numbers_of_a_local_evaluation(cluster, clips, tmp_path):
    d, _ = clips
    pred = tmp_path / "pred"
    # the ground truth of one clip scored as another's prediction: sequences with real errors in them
    for i in range(3):
        case = pred / f"c{i}"
        case.mkdir(parents=True)
        for png in (d / "GT" / f"c{(i + 1) % 3}").iterdir():
            (case / png.name).write_bytes(png.read_bytes())
    local = vps("evaluate", pred, d / "GT", "--metrics", "all", "--json", tmp_path / "local.json", "-q")
    on_ray = vps(
        "evaluate",
        pred,
        d / "GT",
        "--metrics",
        "all",
        "--json",
        tmp_path / "ray.json",
        "-q",
        "--ray",
        cluster,
    )
    assert local.returncode == on_ray.returncode == 0, on_ray.stderr
    a, b = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("local", "ray"))
    assert a == b
    scores = a["splits"]["."]["."]
    assert scores["n_sequences"] == 3 and 0.1 < scores["dataset"]["Smeasure"] < 0.99  # not a trivial score


def test_a_killed_worker_is_reported_and_resume_completes_the_batch_without_recomputing(
    cluster, clips, tmp_path
):
    d, w = clips
    inputs = [d / "c0.mp4", d / "c1.mp4", d / "c2.mp4"]
    out = tmp_path / "out"
    # the worker segmenting c1 dies abruptly (os._exit, as a kill -9) at its frame 5; no retries allowed
    first = segment_on_ray(inputs, w, out, cluster, DieAt("c1", 5, tmp_path / "died"), max_retries=0)
    assert (tmp_path / "died").exists()
    assert sorted(Path(p).name for p in first.failures) == ["c1.mp4"]
    lost = next(iter(first.failures.values())).one_line()
    assert "c1.mp4:" in lost and "worker" in lost and "--resume" in lost
    assert (
        json.loads((out / "c1" / "run.json").read_text())["status"] == "running"
    )  # killed: no chance to say
    finished = {n: (out / n / "run.json").stat().st_mtime_ns for n in ("c0", "c2")}

    second = vps(
        "segment",
        *inputs,
        "-w",
        w,
        "-o",
        out,
        "--ray",
        cluster,
        "--resume",
        "--min-persistence",
        "1",
        "-q",
    )
    assert second.returncode == 0, second.stderr
    assert {n: (out / n / "run.json").stat().st_mtime_ns for n in ("c0", "c2")} == finished  # not touched
    batch = json.loads((out / "batch.json").read_text())
    assert {e["name"]: e["status"] for e in batch["entries"]} == {
        "c0": "skipped",
        "c1": "complete",
        "c2": "skipped",
    }
    run = json.loads((out / "c1" / "run.json").read_text())
    assert run["status"] == "complete" and run["frames"] == 8
    assert 0 < run["resumed_with_existing_masks"] < 8  # the frames the killed worker wrote were kept
    # and the resumed video equals an uninterrupted local run
    ref = vps(
        "segment",
        d / "c1.mp4",
        "-w",
        w,
        "-o",
        tmp_path / "ref",
        "--threads",
        "1",
        "--min-persistence",
        "1",
        "-q",
    )
    assert ref.returncode == 0, ref.stderr
    assert (out / "c1" / "frames.csv").read_bytes() == (tmp_path / "ref" / "c1" / "frames.csv").read_bytes()
    for png in (tmp_path / "ref" / "c1" / "masks").iterdir():
        assert (out / "c1" / "masks" / png.name).read_bytes() == png.read_bytes()


def test_a_killed_worker_is_retried_and_the_retry_continues_from_its_frames(cluster, clips, tmp_path):
    d, w = clips
    out = tmp_path / "out"
    hook = DieAt("c2", 4, tmp_path / "died")
    r = segment_on_ray([d / "c0.mp4", d / "c2.mp4"], w, out, cluster, hook, max_retries=1, overlay=False)
    assert not r.failures
    assert (tmp_path / "died").exists()
    entries = {e["name"]: e for e in json.loads((out / "batch.json").read_text())["entries"]}
    assert entries["c2"]["attempts"] == 2 and entries["c2"]["status"] == "complete"
    assert entries["c0"]["attempts"] == 1
    run = json.loads((out / "c2" / "run.json").read_text())
    assert run["status"] == "complete" and 0 < run["resumed_with_existing_masks"] < 8


def test_ctrl_c_cancels_the_tasks_and_they_record_the_interrupt(cluster, clips, tmp_path):
    import signal
    import time

    d, w = clips
    write_clip(
        tmp_path, SynthConfig(frames=400, width=96, height=64, seed=44), "mp4", "long"
    )  # outlasts the wait
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vpscli",
            "segment",
            tmp_path / "long.mp4",
            "-w",
            w,
            "-o",
            tmp_path / "out",
            "--ray",
            cluster,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    masks = tmp_path / "out" / "long" / "masks"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(masks.glob("*.png"))) < 5 and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip("the run finished before the interrupt arrived")
    assert proc.returncode == 130, err
    assert "interrupted" in err and "--resume" in err and "Traceback" not in err
    run = json.loads((tmp_path / "out" / "long" / "run.json").read_text())
    assert run["status"] == "interrupted" and 0 < run["frames"] < 400  # the task stopped, and said so
    batch = json.loads((tmp_path / "out" / "batch.json").read_text())
    assert batch["statuses"] == {"interrupted": 1}


def test_workers_running_another_vps_stop_the_batch_with_one_line(cluster):
    import vpscli
    from vpscli.batch.ray_backend import _check_worker_version
    from vpscli.errors import InputError

    _check_worker_version(ray, ray.put(vpscli.__version__))  # the same version: nothing to say
    with pytest.raises(InputError) as e:
        _check_worker_version(ray, ray.put("0.0.1"))
    assert "the Ray workers run vps 0.0.1" in e.value.one_line() and "on every node" in e.value.one_line()


def test_a_ray_task_gets_the_local_thread_rule_and_the_driver_says_the_frame_decision(
    cluster, clips, tmp_path
):
    """Within --cpus-per-video 2 the model gets both CPUs on OpenVINO and one on torch; the default weights'
    card sets the frame decision in the workers, and the driver says so once, as a local run does."""
    from vpscli.weights.manifest import default_entry

    d, _ = clips
    for backend, want in (("openvino", 2), ("torch", 1)):
        if backend == "openvino" and importlib.util.find_spec("openvino") is None:
            continue
        out = tmp_path / backend
        args = ("segment", d / "c0.mp4", d / "c1.mp4", "-o", out, "--ray", cluster, "--backend", backend)
        r = vps(*args, "--cpus-per-video", "2")
        assert r.returncode == 0, r.stderr
        for name in ("c0", "c1"):
            record = json.loads((out / name / "run.json").read_text())
            numerics = record["numerics"]
            assert numerics["backend"].startswith(backend) and numerics["threads"] == want
            assert record["presence"] == default_entry().presence
        assert r.stderr.count(f"the level calibrated for {default_entry().file}") == 1, r.stderr
