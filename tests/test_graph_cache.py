"""The converted-model cache as a user sees it: what it holds, what this installation will never load again,
and removing that (``vps weights cache``, the ``model cache`` row of ``vps doctor``)."""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest

from vpscli.backends.store import (
    GRAPH_FORMAT,
    STAGING_EXPIRY_S,
    GraphEntry,
    converted_models,
    entry_fields,
    format_bytes,
    open_entry,
    remove_entries,
    scan_cache,
    stale_reason,
)
from vpscli.cli import main

#: the versions the entries below are compared with (this installation, as far as the tests say)
INSTALLED = {"vps": "1.4.0", "openvino": "2026.4.1", "onnxruntime": None, "nncf": "3.4.0"}


def _fields(**changes) -> dict:
    fields = entry_fields(
        model="pns-net",
        backbone="efficientnet-lite2",
        input_size=[256, 448],
        clip_length=5,
        weights_sha256="ab" * 32,
        backend="openvino",
        backend_version="2026.4.1",
        precision="fp32",
    )
    return {**fields, "vps": "1.4.0", **changes}


def _add(root, size: int, used: float, **changes) -> GraphEntry:
    """An entry built the way a run builds one, holding one file of ``size`` bytes, last used at ``used``."""

    def convert(graph, folder):
        (folder / f"{graph}.bin").write_bytes(b"\1" * size)
        return [f"{graph}.bin"]

    entry, built = open_entry(root, _fields(**changes), ("step",), convert)  # type: ignore[arg-type]
    assert built
    record = entry.folder / "entry.json"
    os.utime(record, (used, used))
    return entry


def _record_size(entry: GraphEntry) -> int:
    return (entry.folder / "entry.json").stat().st_size


@pytest.fixture
def cache(tmp_path):
    """A cache with one current entry, one of each kind this installation never loads, a damaged folder and
    two staging folders (one killed two days ago, one maybe being written now)."""
    now = time.time()
    made = {
        "current": _add(tmp_path, 3000, now - 10),
        "int8 current": _add(tmp_path, 500, now - 20, precision="int8", calibration="c1", nncf="3.4.0"),
        "old format": _add(tmp_path, 1000, now - 400, graph_format=GRAPH_FORMAT - 1),
        "old vps": _add(tmp_path, 1100, now - 300, vps="1.3.2"),
        "old openvino": _add(tmp_path, 1200, now - 200, backend_version="2026.3.0"),
        "no onnxruntime": _add(tmp_path, 1300, now - 100, backend="onnxruntime", backend_version="1.32.0"),
        "old nncf": _add(tmp_path, 1400, now - 50, precision="int8", calibration="c2", nncf="3.3.0"),
    }
    graphs = tmp_path / "graphs"
    damaged = graphs / "pns-net-openvino-fp32-0123456789abcdef0123"
    damaged.mkdir()
    (damaged / "step.bin").write_bytes(b"\0" * 700)
    killed = graphs / ".staging-pns-net-openvino-fp32-x-1a2b3c4d"
    killed.mkdir()
    (killed / "step.xml").write_bytes(b"\0" * 800)
    two_days = now - 2 * STAGING_EXPIRY_S
    os.utime(killed, (two_days, two_days))
    running = graphs / ".staging-pns-net-openvino-fp32-y-5e6f7a8b"
    running.mkdir()
    (running / "step.xml").write_bytes(b"\0" * 900)
    return tmp_path, made, damaged, killed, running


def test_the_scan_names_each_entry_this_installation_never_loads_and_why(cache):
    root, made, damaged, killed, running = cache
    found = {e.folder: e for e in scan_cache(root, INSTALLED)}
    assert running not in found  # a conversion may be writing it
    assert set(found) == {e.folder for e in made.values()} | {damaged, killed}
    reasons = {name: found[e.folder].stale for name, e in made.items()}
    assert reasons == {
        "current": None,
        "int8 current": None,
        "old format": f"graph format {GRAPH_FORMAT - 1} (this vps makes {GRAPH_FORMAT})",
        "old vps": "made by vps 1.3.2 (this is 1.4.0)",
        "old openvino": "made by openvino 2026.3.0 (installed: 2026.4.1)",
        "no onnxruntime": "onnxruntime is not installed",
        "old nncf": "made by nncf 3.3.0 (installed: 3.4.0)",
    }
    assert found[damaged].stale == "no readable entry.json" and found[damaged].fields is None
    assert found[killed].stale == "left by an interrupted conversion"
    # sizes on disk: the runtime's files and the record
    assert found[made["old vps"].folder].size == 1100 + _record_size(made["old vps"])
    assert found[damaged].size == 700 and found[killed].size == 800
    # oldest use first
    order = [e.folder for e in scan_cache(root, INSTALLED)]
    assert order.index(made["old format"].folder) < order.index(made["old vps"].folder)
    assert order.index(made["old nncf"].folder) < order.index(made["current"].folder)


def test_stale_reason_compares_the_key_with_what_this_installation_writes():
    assert stale_reason(_fields(), INSTALLED) is None
    assert stale_reason(_fields(), {**INSTALLED, "openvino": "2027.0.0"}) == (
        "made by openvino 2026.4.1 (installed: 2027.0.0)"
    )
    assert stale_reason(_fields(), {**INSTALLED, "openvino": None}) == "openvino is not installed"
    # NNCF only matters to the int8 entries it quantised
    assert stale_reason(_fields(), {**INSTALLED, "nncf": None}) is None
    assert stale_reason(_fields(nncf="3.4.0"), {**INSTALLED, "nncf": None}) == "nncf is not installed"
    assert stale_reason(None, INSTALLED) == "no readable entry.json"


def test_removing_the_stale_entries_keeps_the_current_ones_loadable(cache):
    root, made, damaged, killed, running = cache
    entries = scan_cache(root, INSTALLED)
    stale = [e for e in entries if e.stale]
    freed = remove_entries(stale)
    assert freed == sum(e.size for e in stale) > 0
    assert {e.folder for e in scan_cache(root, INSTALLED)} == {
        made["current"].folder,
        made["int8 current"].folder,
    }
    assert running.is_dir() and not killed.exists() and not damaged.exists()

    def convert(graph, folder):  # pragma: no cover - must not run: the entry is still valid
        raise AssertionError("a current entry was converted again")

    entry, built = open_entry(root, _fields(), ("step",), convert)  # type: ignore[arg-type]
    assert not built and entry.folder == made["current"].folder
    assert remove_entries(stale) == 0  # already gone: nothing to free, no error


def test_an_entry_that_cannot_be_removed_is_one_line_saying_what_was_removed_before_it(cache, monkeypatch):
    from vpscli.errors import InputError

    root, made, *_ = cache
    stale = sorted((e for e in scan_cache(root, INSTALLED) if e.stale), key=lambda e: e.folder.name)
    real_rmtree = shutil.rmtree

    def rmtree(path, *args, **kwargs):
        if path == stale[2].folder:
            raise PermissionError(13, "Permission denied")
        real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr("vpscli.backends.store.shutil.rmtree", rmtree)
    with pytest.raises(InputError) as failed:
        remove_entries(stale)
    message = str(failed.value)
    assert "cannot be removed (Permission denied)" in message and str(stale[2].folder) in message
    assert f"2 removed before it ({format_bytes(stale[0].size + stale[1].size)})" in message
    assert not stale[0].folder.exists() and stale[2].folder.is_dir() and stale[3].folder.is_dir()


def test_loading_an_entry_marks_its_last_use(tmp_path):
    long_ago = time.time() - 30 * 86400
    entry = _add(tmp_path, 100, long_ago)
    assert scan_cache(tmp_path, INSTALLED)[0].last_used == pytest.approx(long_ago)
    before = time.time()
    open_entry(tmp_path, _fields(), ("step",), lambda g, f: [])  # type: ignore[arg-type]
    assert scan_cache(tmp_path, INSTALLED)[0].last_used >= before - 1
    assert entry.valid()  # marking the use leaves the record as written


def test_vps_weights_cache_lists_prunes_and_clears(cache, capsys, monkeypatch):
    root, made, damaged, killed, running = cache
    monkeypatch.setattr("vpscli.backends.store.installed_versions", lambda: dict(INSTALLED))
    registered = root / "weights"
    registered.mkdir()
    (registered / "manifest.json").write_text(
        json.dumps(
            {"format": 1, "weights": [{"file": "ours.safetensors", "model": "pns-net", "sha256": "ab" * 32}]}
        )
    )
    assert main(["weights", "cache", "--cache-dir", str(root), "--weights-dir", str(registered)]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert "ours.safetensors" in lines[made["current"].folder.name].split()
    assert main(["weights", "cache", "--cache-dir", str(root), "--weights-dir", str(root / "none")]) == 0
    out, err = capsys.readouterr()
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "sha256 abababababab…" in lines[made["current"].folder.name]
    assert "current" in lines[made["current"].folder.name].split()
    assert "never loaded again: made by vps 1.3.2 (this is 1.4.0)" in lines[made["old vps"].folder.name]
    assert (
        "448×256" in lines[made["old vps"].folder.name]
        and "openvino 2026.4.1" in lines[made["old vps"].folder.name]
    )
    assert f"9 converted models in {root / 'graphs'}" in " ".join(err.split())
    assert "7 will never be loaded again" in " ".join(err.split())

    assert main(["weights", "cache", "--cache-dir", str(root), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert len(listed) == 9 and sum(e["stale"] is None for e in listed) == 2
    stale_bytes = sum(e["bytes"] for e in listed if e["stale"])

    assert main(["weights", "cache", "--cache-dir", str(root), "--prune"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert f"removed 7 converted models ({format_bytes(stale_bytes)})" in err and "kept 2" in err
    assert {e.folder for e in scan_cache(root, INSTALLED)} == {
        made["current"].folder,
        made["int8 current"].folder,
    }

    assert main(["weights", "cache", "--cache-dir", str(root), "--clear"]) == 0
    assert "removed 2 converted models" in capsys.readouterr().err
    assert scan_cache(root, INSTALLED) == [] and running.is_dir()

    assert main(["weights", "cache", "--cache-dir", str(root)]) == 0
    assert "no converted models in" in capsys.readouterr().err
    assert main(["weights", "cache", "--cache-dir", str(root), "--prune", "--clear"]) == 2
    assert "give one of them" in capsys.readouterr().err


def test_a_conversion_note_says_when_older_entries_could_be_pruned(tmp_path):
    from vpscli.backends import _announcer

    notes: list[str] = []
    announce = _announcer(notes.append, "fp32", "openvino")
    assert announce is not None
    folder = tmp_path / "graphs" / "pns-net-openvino-fp32-0123"
    announce(folder)
    assert notes[-1] == f"converting the model for openvino once, into {folder} (later runs load it)"
    old = _add(tmp_path, 2000, time.time(), graph_format=GRAPH_FORMAT - 1)
    size = format_bytes(scan_cache(tmp_path)[0].size)
    announce(folder)
    assert notes[-1].endswith(
        f"(later runs load it); 1 older converted model ({size}) in the cache will never be loaded again: "
        "vps weights cache --prune removes it"
    )
    assert old.folder.is_dir()  # the note removes nothing


def test_a_conversion_that_fails_on_a_full_disk_names_the_room_left_and_how_to_make_more(
    tmp_path, monkeypatch
):
    import collections
    import errno

    from vpscli.backends.store import LOW_DISK_BYTES, conversion_error

    what = "pns-net could not be converted for openvino"
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr("vpscli.backends.store.shutil.disk_usage", lambda p: usage(10**9, 0, 2 * 2**20))
    # OpenVINO reports a full disk as an iostream error; the free space says what happened
    full = str(conversion_error(RuntimeError("basic_ios::clear: iostream error"), what, tmp_path))
    assert full.startswith(f"{tmp_path}: {what}: too little room in the cache (2.0 MiB free)")
    assert "vps weights cache --prune" in full and "--cache-dir a folder on another disk" in full
    monkeypatch.setattr("vpscli.backends.store.shutil.disk_usage", lambda p: usage(10**12, 0, 10**11))
    assert "too little room" in str(conversion_error(OSError(errno.ENOSPC, "No space left"), what, tmp_path))
    other = str(conversion_error(RuntimeError("Unsupported operator aten::foo\nmore"), what, tmp_path))
    assert other.startswith(f"{what} (RuntimeError: Unsupported operator aten::foo)")
    assert "use --backend torch, and report" in other
    assert LOW_DISK_BYTES > 200 * 2**20  # the largest bundled model's entry with its compiled form: 170 MB


def test_sizes_and_counts_read_as_a_person_writes_them():
    assert [converted_models(1), converted_models(16, "older ")] == [
        "1 converted model",
        "16 older converted models",
    ]
    assert [format_bytes(n) for n in (512, 2048, 15 * 2**20 + 1, int(1.16 * 2**30), 25 * 2**30)] == [
        "512 B",
        "2.0 KiB",
        "15 MiB",
        "1.2 GiB",
        "25 GiB",
    ]


def test_doctor_counts_the_converted_models_and_what_prune_would_free(cache, capsys, monkeypatch):
    root, made, *_ = cache
    monkeypatch.setenv("VPS_CACHE", str(root))
    monkeypatch.setattr("vpscli.backends.store.installed_versions", lambda: dict(INSTALLED))
    from vpscli.doctor import collect

    contents = collect()["backends"]["cache_contents"]
    entries = scan_cache(root, INSTALLED)
    stale = [e for e in entries if e.stale]
    assert contents == {
        "count": 9,
        "bytes": sum(e.size for e in entries),
        "stale": 7,
        "stale_bytes": sum(e.size for e in stale),
    }
    main(["doctor"])
    out = " ".join(capsys.readouterr().out.split())
    assert f"{root} — 9 converted models" in out and "(7 never loaded again" in out
    assert "vps weights cache --prune removes them" in out
