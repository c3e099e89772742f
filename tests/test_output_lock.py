"""One writer per output folder: a second vps is refused with the holder's pid and host; a stale lock (its
process gone) is taken over with a note."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vpscli.engine import Segmenter, SegmentOptions, segment_video
from vpscli.errors import OutputError
from vpscli.io.lock import OutputLock, lock_path
from vpscli.io.sources import open_source


def test_second_writer_is_refused_and_released_lock_is_free(tmp_path):
    folder = tmp_path / "out" / "vid"
    with OutputLock(folder):
        assert lock_path(folder).is_file()
        holder = json.loads(lock_path(folder).read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        with pytest.raises(
            OutputError, match=rf"another vps \(pid {os.getpid()} on {socket.gethostname()}\) is writing"
        ):
            OutputLock(folder).acquire()
    assert not lock_path(folder).exists()
    with OutputLock(folder) as again:
        assert again.note is None


def test_a_dead_writers_lock_is_taken_over_with_a_note(tmp_path):
    folder = tmp_path / "vid"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock_path(folder).write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(), "start": "1"}))
    with OutputLock(folder) as lock:
        assert "no longer running" in lock.note and f"pid {dead.pid}" in lock.note
    # a live pid whose start time differs is a reused pid: stale too
    lock_path(folder).write_text(
        json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "start": "-1"})
    )
    with OutputLock(folder) as lock:
        assert lock.note and "no longer running" in lock.note


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="process states are read from /proc")
def test_an_exited_writer_not_yet_collected_holds_no_lock(tmp_path):
    """A killed writer whose parent has not collected it yet (a zombie: a killed Ray worker until the raylet
    reaps it) still has its pid and start time, but writes nothing: its lock is stale."""
    from vpscli.io.lock import _start_time

    folder = tmp_path / "vid"
    exited = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    while Path(f"/proc/{exited.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    holder = {"pid": exited.pid, "host": socket.gethostname(), "start": _start_time(exited.pid)}
    lock_path(folder).write_text(json.dumps(holder))
    try:
        with OutputLock(folder) as lock:
            assert "no longer running" in lock.note and f"pid {exited.pid}" in lock.note
    finally:
        exited.wait()


def test_another_hosts_lock_is_refused_with_the_file_to_delete(tmp_path):
    folder = tmp_path / "vid"
    lock_path(folder).write_text(json.dumps({"pid": 1234, "host": "node-7", "start": "5"}))
    with pytest.raises(OutputError) as e:
        OutputLock(folder).acquire()
    assert "pid 1234 on node-7" in str(e.value) and str(lock_path(folder)) in e.value.one_line()


def test_segment_refuses_a_folder_another_vps_writes(clip, weights, tmp_path):
    seg = Segmenter("pns-plus", weights["pns-plus"], device="cpu")
    opts = SegmentOptions(out_root=tmp_path, overlay=False, resume=True)
    with OutputLock(tmp_path / "vid"):
        with pytest.raises(OutputError, match="another vps"):
            segment_video(seg, open_source(clip / "vid.mp4"), opts)
    assert not (tmp_path / "vid").exists()  # nothing written, nothing marked failed
    assert segment_video(seg, open_source(clip / "vid.mp4"), opts).status == "complete"
    assert not lock_path(tmp_path / "vid").exists()


def test_an_unreadable_input_leaves_no_output_root(tmp_path, weights):
    seg = Segmenter("pns-plus", weights["pns-plus"], device="cpu")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(Exception):  # noqa: B017 - any failure; the point is what is left on disk
        segment_video(seg, open_source(bad), SegmentOptions(out_root=tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_two_batches_into_one_root_keep_one_record_each(tmp_path):
    from datetime import datetime, timezone

    from vpscli.batch.record import VideoOutcome, write_batch_json

    path = tmp_path / "batch.json"
    a = [VideoOutcome("a", "/in/a.mp4", str(tmp_path / "a"), "complete", 10, 1.0)]
    b = [VideoOutcome("b", "/in/b.mp4", str(tmp_path / "b"), "complete", 12, 1.0)]
    t0 = datetime(2026, 12, 5, 10, 0, 0, tzinfo=timezone.utc)
    assert write_batch_json(path, a, started=t0, backend="local") == path
    second = write_batch_json(
        path, b, started=datetime(2026, 12, 5, 10, 5, 0, tzinfo=timezone.utc), backend="local"
    )
    assert second == tmp_path / "batch-20261205T100500.json"
    assert [e["name"] for e in json.loads(path.read_text())["entries"]] == ["a"]
    assert [e["name"] for e in json.loads(second.read_text())["entries"]] == ["b"]
    # a rerun of the first batch (the same inputs) replaces its own record
    assert write_batch_json(path, a, started=t0, backend="local") == path
    assert not lock_path(path).exists()
