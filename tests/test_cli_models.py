"""`vps models` and `vps weights import|list|verify` through the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import torch

from tests.test_models import _official_state


def vps(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "vpscli", *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        timeout=300,
    )


def test_weights_import_list_verify_and_tamper(tmp_path):
    src = tmp_path / "PNSPlus.pth"
    torch.save(_official_state("pns-plus"), src)  # official key names, DataParallel "module." prefix
    folder = tmp_path / "w"
    env = {"VPS_WEIGHTS": str(folder)}
    r = vps("weights", "import", src, "--model", "pns-plus", env=env)
    assert r.returncode == 0, r.stderr
    assert "legacy PNS normalisation" in r.stderr
    entries = json.loads(vps("weights", "list", "--json", env=env).stdout)
    assert [(e["model"], e["input_size"]) for e in entries] == [("pns-plus", [256, 448])]
    assert (folder / entries[0]["file"]).is_file()
    r = vps("weights", "verify", env=env)
    assert r.returncode == 0 and f"ok {entries[0]['file']}" in r.stdout
    with open(folder / entries[0]["file"], "r+b") as f:  # flip bytes in the payload
        f.seek(-16, os.SEEK_END)
        f.write(b"\0" * 16)
    r = vps("weights", "verify", env=env)
    assert r.returncode == 1 and "sha256 mismatch" in r.stderr
    r = vps("weights", "import", src, "--model", "pns-net", env=env)  # wrong model: clear error
    assert r.returncode == 1 and str(src) in r.stderr and "Traceback" not in r.stderr
    assert vps("weights", "import", tmp_path / "missing.pth", "--model", "pns-plus", env=env).returncode == 1


def test_models_json_lists_every_model(tmp_path):
    r = vps("models", "--json", env={"VPS_WEIGHTS": str(tmp_path)})  # no weights: aen-cffm is the default
    assert r.returncode == 0, r.stderr
    every = json.loads(r.stdout)  # one row per architecture and backbone
    assert [(row["name"], row["backbone"]) for row in every] == [
        (name, backbone)
        for name in ("aen-cffm", "aen-pns-plus", "cffm", "pns-plus", "pns-net")  # the order of preference
        for backbone in ("res2net50", "efficientnet-lite2")
    ]
    rows = {row["name"]: row for row in every if row["backbone"] == "res2net50"}
    lite = {row["name"]: row for row in every if row["backbone"] == "efficientnet-lite2"}
    for row in every:
        assert {
            "name",
            "backbone",
            "params",
            "gflops_per_frame",
            "input_size",
            "window",
            "weights",
            "imagenet",
        } <= set(row)
        assert row["imagenet"] == (row["backbone"] == "efficientnet-lite2")
    assert rows["pns-plus"]["params"] == 9_793_731 and rows["pns-plus"]["input_size"] == [256, 448]
    assert (
        abs(rows["cffm"]["params"] / 26.49e6 - 1) < 0.10
        and abs(rows["aen-cffm"]["params"] / 33.81e6 - 1) < 0.10
    )
    assert rows["aen-cffm"]["default"] and "memory of 3 clips" in rows["aen-cffm"]["window"]
    # the same architecture on EfficientNet-Lite2: same window and input size, far fewer parameters
    # and FLOPs, the Lite normalisation
    for name, row in lite.items():
        assert row["window"] == rows[name]["window"] and row["input_size"] == rows[name]["input_size"]
        assert (
            row["params"] < rows[name]["params"] / 1.5
            and row["gflops_per_frame"] < rows[name]["gflops_per_frame"]
        )
        assert row["mean"] == [127 / 255] * 3 and not row["default"]
    # with the repository's weights: the manifest's default weights mark their model and backbone, and
    # each model with weights lists them with its validation maxDice (in-process and without FLOPs)
    from vpscli.models import describe_models
    from vpscli.weights import bundled_entries
    from vpscli.weights.manifest import default_entry, find_entry

    every = describe_models(with_flops=False)
    chosen = default_entry()
    if chosen is not None:
        assert [(row["name"], row["backbone"]) for row in every if row["default"]] == [
            (chosen.model, chosen.backbone)
        ]
    for entry in bundled_entries():
        row = next(r for r in every if r["name"] == entry.model and r["backbone"] == entry.backbone)
        runs = find_entry(entry.model, backbone=entry.backbone)  # a model's row scores what --model runs
        assert entry.file in row["weights"] and row["val_maxDice"] == runs.record["metrics"]["maxDice"]
    r = vps("--help")
    assert "models" in r.stdout and "weights" in r.stdout
