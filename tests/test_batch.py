"""Inputs at archive scale without Ray: manifests, --shard, batch.json, and --ray's error when Ray is missing."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests._models import TINY, trained_like
from vpscli.batch.manifest import parse_shard, read_manifest, take_shard
from vpscli.errors import UsageError
from vpscli.models import save_checkpoint
from vpscli.synth import SynthConfig, write_clip


def vps(*args, cwd=None, env=None):
    return subprocess.run(
        [sys.executable, "-m", "vpscli", *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env
    )


def test_text_manifest_skips_comments_and_blank_lines_and_reads_paths_from_its_folder(tmp_path):
    m = tmp_path / "lists" / "m.txt"
    m.parent.mkdir()
    m.write_text("# archive 2024\n\nday1/a.mp4\n  /data/b.mp4  \n# c.mp4\n")
    entries = read_manifest(m)
    assert [e.path for e in entries] == [str(m.parent / "day1/a.mp4"), "/data/b.mp4"]
    assert all(e.options == {} for e in entries)
    assert entries[0].where == f"{m} line 3"


def test_csv_manifest_converts_and_checks_per_video_options(tmp_path):
    m = tmp_path / "m.csv"
    m.write_text("path,threshold,min_persistence,model\na.mp4,0.3,,\nb.mp4,,1,pns-plus\nc.mp4,,,\n")
    entries = read_manifest(m)
    assert [e.options for e in entries] == [
        {"threshold": 0.3},
        {"min_persistence": 1, "model": "pns-plus"},
        {},
    ]
    assert entries[1].path == str(tmp_path / "b.mp4")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("path,threshold\na.mp4,1.5\n", "line 2: threshold: --threshold must be between 0 and 1, got 1.5"),
        ("path,threshold\na.mp4,high\n", "line 2: threshold must be a number between 0 and 1, got 'high'"),
        ("path,min_persistence\na.mp4,0\n", "line 2: min_persistence: --min-persistence must be between 1"),
        ("path,min_persistence\na.mp4,2.5\n", "min_persistence must be a whole number of frames, got '2.5'"),
        ("path,model\na.mp4,unet\n", "line 2: model: unknown model 'unet' — fix: choose one of: aen-cffm"),
        ("file,threshold\na.mp4,0.5\n", "a CSV manifest needs a 'path' column (found: file, threshold)"),
        (
            "path,fps\na.mp4,25\n",
            "unknown manifest column(s): fps — fix: use path and any of: model, threshold",
        ),
        ("path\n", "the manifest lists no inputs"),
    ],
)
def test_bad_csv_manifest_is_one_line_naming_the_file_and_fix(tmp_path, text, expected):
    m = tmp_path / "m.csv"
    m.write_text(text)
    with pytest.raises(UsageError) as e:
        read_manifest(m)
    line = e.value.one_line()
    assert "\n" not in line and str(m) in line and expected in line and "fix:" in line


def test_missing_manifest_names_the_option(tmp_path):
    with pytest.raises(UsageError, match="manifest not found — fix: check the --manifest path"):
        read_manifest(tmp_path / "nope.txt")


@pytest.mark.parametrize("text, shard", [("0/1", (0, 1)), ("3/4", (3, 4)), (None, None)])
def test_shard_parses(text, shard):
    assert parse_shard(text) == shard


@pytest.mark.parametrize("text", ["4/4", "-1/4", "1/0", "1", "a/b", "1/2/3", "1-4"])
def test_bad_shard_is_a_usage_error_with_the_fix(text):
    with pytest.raises(UsageError) as e:
        parse_shard(text)
    assert "--shard" in e.value.one_line() and "0-based" in e.value.one_line()


class _Named:
    def __init__(self, name):
        self.name = name


def test_shards_partition_the_inputs_whatever_their_order():
    names = [f"v{i:02d}" for i in range(11)]
    shards = [[s.name for s in take_shard([_Named(n) for n in names], (i, 3))] for i in range(3)]
    again = [[s.name for s in take_shard([_Named(n) for n in reversed(names)], (i, 3))] for i in range(3)]
    assert shards == again  # deterministic: by output name, not by the order given
    assert sorted(sum(shards, [])) == names and sum(map(len, shards)) == 11
    assert shards[0] == ["v00", "v03", "v06", "v09"]


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """Three short clips, two of them with the same file name in different folders, and tiny weights."""
    d = tmp_path_factory.mktemp("archive")
    write_clip(d / "dayA", SynthConfig(frames=8, width=96, height=64, seed=31), "mp4", "x")
    write_clip(d / "dayB", SynthConfig(frames=8, width=96, height=64, seed=32), "mp4", "x")
    write_clip(d / "dayB", SynthConfig(frames=8, width=96, height=64, seed=33), "mp4", "y")
    w = save_checkpoint(trained_like("pns-plus", TINY["pns-plus"]), d / "tiny.safetensors")
    return d, w


def test_shards_write_the_folders_of_one_run_into_one_root(archive, tmp_path):
    d, w = archive
    (tmp_path / "m.txt").write_text(f"{d}/dayA/x.mp4\n{d}/dayB/x.mp4\n{d}/dayB/y.mp4\n")
    for i in range(2):
        r = vps(
            "segment",
            "--manifest",
            tmp_path / "m.txt",
            "-w",
            w,
            "-o",
            tmp_path / "out",
            "--shard",
            f"{i}/2",
            "--no-overlay",
            "-q",
            "--threads",
            "1",
        )
        assert r.returncode == 0, r.stderr
    out = tmp_path / "out"
    # names over all inputs (dayA_x, dayB_x), not over the shard's share
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["dayA_x", "dayB_x", "y"]
    summaries = [json.loads((out / f"batch-shard-{i}-of-2.json").read_text()) for i in range(2)]
    assert [[e["name"] for e in s["entries"]] for s in summaries] == [["dayA_x", "y"], ["dayB_x"]]
    assert all(
        e["status"] == "complete" and e["frames"] == 8 and e["device"] == "cpu"
        for s in summaries
        for e in s["entries"]
    )
    # the same root again with --resume, unsharded: every video is recognised as finished
    r = vps("segment", "--manifest", tmp_path / "m.txt", "-w", w, "-o", out, "--resume", "--no-overlay", "-q")
    assert r.returncode == 0, r.stderr
    batch = json.loads((out / "batch.json").read_text())
    assert batch["statuses"] == {"skipped": 3} and batch["backend"] == "local"
    assert [e["frames"] for e in batch["entries"]] == [8, 8, 8]  # from each video's run.json


def test_csv_manifest_threshold_reaches_run_json(archive, tmp_path):
    d, w = archive
    (tmp_path / "m.csv").write_text(f"path,threshold,min_persistence\n{d}/dayB/y.mp4,0.25,2\n")
    r = vps(
        "segment",
        f"{d}/dayA/x.mp4",
        "--manifest",
        tmp_path / "m.csv",
        "-w",
        w,
        "-o",
        tmp_path / "out",
        "--no-overlay",
        "-q",
        "--threads",
        "1",
    )
    assert r.returncode == 0, r.stderr
    runs = {n: json.loads((tmp_path / "out" / n / "run.json").read_text()) for n in ("x", "y")}
    assert (runs["x"]["threshold"], runs["x"]["min_persistence"]) == (0.5, 6)
    assert (runs["y"]["threshold"], runs["y"]["min_persistence"]) == (0.25, 2)


def test_bad_manifest_on_the_command_line_is_one_line_exit_2(archive, tmp_path):
    d, w = archive
    (tmp_path / "m.csv").write_text("path,threshold\nx.mp4,2\n")
    r = vps("segment", "--manifest", tmp_path / "m.csv", "-w", w, "-o", tmp_path / "out")
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and f"{tmp_path / 'm.csv'} line 2" in r.stderr and "fix:" in r.stderr
    assert not (tmp_path / "out").exists()
    r = vps("segment", "-o", tmp_path / "out")
    assert r.returncode == 2 and "no inputs — fix: give videos" in r.stderr


def test_ray_without_the_extra_names_the_install_command(archive, tmp_path):
    d, w = archive
    fake = tmp_path / "no_ray" / "ray"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    env = {**__import__("os").environ}
    env["PYTHONPATH"] = f"{fake.parent}:{env.get('PYTHONPATH', '')}"
    for cmd in (
        ["segment", f"{d}/dayA/x.mp4", "-w", w, "-o", tmp_path / "out", "--ray", "auto"],
        ["evaluate", tmp_path, tmp_path, "--ray", "auto"],
    ):
        r = vps(*cmd, env=env)
        assert r.returncode == 2, r.stderr
        assert r.stderr.strip().count("\n") == 0 and "pip install 'vps[ray]'" in r.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "args, expected",
    [
        (
            ["--device", "cuda:1"],
            "--device cuda:1 with --ray: Ray chooses each task's GPU — fix: use --device auto",
        ),
        (["--device", "cuda"], "needs a GPU share per video — fix: add --gpus-per-video 1"),
        (["--gpus-per-video", "-1"], "--gpus-per-video must be 0 or more"),
        (["--cpus-per-video", "0"], "--cpus-per-video must be above 0"),
        (["--max-retries", "-1"], "--max-retries must be 0 or more"),
        (["--jobs", "2"], "--jobs applies to a local run; with --ray each video is its own task"),
    ],
)
def test_ray_options_are_checked_before_anything_runs(archive, tmp_path, args, expected):
    from typer.testing import CliRunner

    from vpscli.cli import app

    d, w = archive
    r = CliRunner().invoke(
        app,
        ["segment", f"{d}/dayA/x.mp4", "-w", str(w), "-o", str(tmp_path / "out"), "--ray", "local", *args],
    )
    assert r.exit_code == 2 and expected in " ".join(r.output.split()), r.output
    assert not (tmp_path / "out").exists()


def test_task_device_and_threads():
    from vpscli.batch.ray_backend import task_cpu_threads, task_device

    assert (
        task_device("auto", 0) == "cpu"
        and task_device("auto", 0.25) == "cuda"
        and task_device("cuda", 1) == "cuda"
    )
    with pytest.raises(UsageError, match="would hold GPUs"):
        task_device("cpu", 0.5)
    assert task_cpu_threads(None, 1) == 1 and task_cpu_threads(None, 4) == 3 and task_cpu_threads(2, 8) == 2
    assert task_cpu_threads(None, 0.5) == 1
    assert task_cpu_threads(None, 4, "openvino") == 4 and task_cpu_threads(None, 4, "onnxruntime") == 3
    assert task_cpu_threads(2, 8, "openvino") == 2 and task_cpu_threads(None, 0.5, "openvino") == 1


def test_manifest_model_without_weights_is_refused_before_any_video(archive, tmp_path):
    """Every row's model is checked first: exit 2, one line naming the row, nothing segmented."""
    d, _ = archive
    (tmp_path / "m.csv").write_text(f"path,model\n{d}/dayA/x.mp4,pns-plus\n{d}/dayB/y.mp4,aen-pns-plus\n")
    r = vps("segment", "--manifest", tmp_path / "m.csv", "-o", tmp_path / "out", "--no-overlay", "-q")
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and "no trained weights for model 'aen-pns-plus'" in r.stderr
    assert f"{tmp_path / 'm.csv'} line 3" in r.stderr and "fix:" in r.stderr
    assert not (tmp_path / "out").exists()


def test_ray_requests_beyond_the_cluster_are_refused():
    from vpscli.batch.ray_cluster import check_cluster_resources

    check_cluster_resources({"CPU": 16.0, "GPU": 2.0}, 0.5, 1)
    check_cluster_resources({"CPU": 2.0}, 0, 2)
    with pytest.raises(
        UsageError, match=r"--gpus-per-video 0.5 asks for more GPUs than the Ray cluster has \(0\)"
    ):
        check_cluster_resources({"CPU": 16.0}, 0.5, 1)
    with pytest.raises(UsageError, match="--cpus-per-video 4 asks for more CPUs"):
        check_cluster_resources({"CPU": 2.0, "GPU": 1.0}, 0, 4)


def test_manifest_rows_with_conflicting_settings_for_one_video_are_refused(archive, tmp_path):
    d, w = archive
    (tmp_path / "m.csv").write_text(
        f"path,threshold\n{d}/dayA/x.mp4,0.3\n{d}/dayA/x.mp4,0.6\n{d}/dayB/y.mp4,0.5\n{d}/dayB/y.mp4,0.5\n"
    )
    r = vps("segment", "--manifest", tmp_path / "m.csv", "-w", w, "-o", tmp_path / "out", "-q")
    assert r.returncode == 2 and "listed twice with different settings" in r.stderr, r.stderr
    assert "line 2" in r.stderr and "line 3" in r.stderr and not (tmp_path / "out").exists()


def test_an_input_not_found_is_listed_in_batch_json(archive, tmp_path):
    d, w = archive
    r = vps(
        "segment", f"{d}/dayB/y.mp4", f"{d}/nope.mp4", "-w", w, "-o", tmp_path / "out", "--no-overlay", "-q"
    )
    assert r.returncode == 3, r.stderr
    batch = json.loads((tmp_path / "out" / "batch.json").read_text())
    entries = {e["source"]: e for e in batch["entries"]}
    assert entries[f"{d}/nope.mp4"]["status"] == "failed" and "not found" in entries[f"{d}/nope.mp4"]["error"]
    assert batch["statuses"] == {"complete": 1, "failed": 1}


def test_a_batch_runs_from_the_library_with_its_events_and_a_per_video_column(clip, weights, tmp_path):
    """``vpscli.batch`` without the command line: jobs from inputs and a manifest row's column, run locally,
    each outcome in the report and in batch.json, every event told to the caller."""
    from vpscli.batch.events import BatchEvents
    from vpscli.batch.jobs import gather_jobs
    from vpscli.batch.manifest import ManifestEntry
    from vpscli.batch.runner import BatchReport, LocalBackend, run_batch
    from vpscli.engine import ModelConfig, SegmentOptions

    class Told(BatchEvents):
        def __init__(self):
            self.said: list[str] = []

        def input_failed(self, error):
            self.said.append("missing")

        def video_finished(self, report):
            self.said.append(f"finished {report.name}")

        def running(self, message):
            self.said.append("running")

    told = Told()
    model = ModelConfig("pns-plus", weights=weights["pns-plus"], device="cpu")
    options = SegmentOptions(out_root=tmp_path / "out", overlay=False, min_persistence=1)
    rows = [ManifestEntry(str(clip / "Frame" / "odd"), {"min_persistence": 2}, "m.csv line 2")]
    jobs, missing = gather_jobs(
        [str(clip / "vid.mp4"), str(tmp_path / "nowhere.mp4")], rows, model, options, events=told
    )
    assert [(j.source.name, j.options.min_persistence) for j in jobs] == [("vid", 1), ("odd", 2)]
    report = run_batch(jobs, LocalBackend(threads=1), BatchReport(jobs, tmp_path / "out", missing), told)
    assert [r.name for r in report.ordered_reports()] == ["vid", "odd"] and not report.failures
    assert told.said == [
        "missing",
        "running",
        "finished vid",
        "running",
        "finished odd",
    ]  # one model per setting
    written = report.write_json(tmp_path / "out" / "batch.json", "local")
    entries = json.loads(written.read_text())["entries"]
    assert [(e["name"], e["status"]) for e in entries] == [
        ("vid", "complete"),
        ("odd", "complete"),
        ("nowhere.mp4", "failed"),
    ]
    assert json.loads((tmp_path / "out" / "odd" / "run.json").read_text())["min_persistence"] == 2
