"""An installed vps is whole: the wheel carries the bundled weights and their manifest, and a vps installed
from it into a fresh virtual environment segments a clip from a folder outside the repository."""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]


def test_every_vpscli_package_is_listed_for_the_wheel():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "vpscli").rglob("__init__.py")}
    assert found <= listed and listed - found == {"vps_weights"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    base = [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(out)]
    # this environment's setuptools when it is recent enough (fast, offline), else pip's isolated build
    r = subprocess.run(base + ["--no-build-isolation"], capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        r = subprocess.run(base, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    (path,) = out.glob("vps-*.whl")
    return path


def test_wheel_carries_the_bundled_weights(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    manifest = json.loads((ROOT / "weights" / "manifest.json").read_text())
    assert "vps_weights/manifest.json" in names
    for entry in manifest["weights"]:
        assert f"vps_weights/{entry['file']}" in names


def test_installed_vps_segments_a_clip_outside_the_repository(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    purelib = Path(
        subprocess.run(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    # vps's dependencies (torch, …) from this environment: its site-packages joins the fresh one's path, but
    # as a plain folder, so this checkout's editable install (a .pth hook there) does not come with it
    deps = [p for p in {sysconfig.get_paths()["purelib"], *site.getsitepackages()} if Path(p).is_dir()]
    (purelib / "zz_vps_test_deps.pth").write_text("\n".join(deps) + "\n")
    r = subprocess.run(
        [str(py), "-m", "pip", "install", "--no-deps", "-q", str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("VPS_WEIGHTS", "PYTHONPATH")}
    vps = str(venv / "bin" / "vps")
    where = subprocess.run(
        [str(py), "-c", "import vpscli, vpscli.paths as p; print(vpscli.__file__); print(p.weights_dir())"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    package_file, weights = where.stdout.split()
    assert Path(package_file).is_relative_to(venv) and Path(weights).is_relative_to(venv)
    subprocess.run(
        [vps, "synth", "s", "--frames", "12", "--seed", "5", "--name", "c", "--quiet"],
        cwd=work,
        env=env,
        check=True,
        timeout=300,
        capture_output=True,
    )
    r = subprocess.run(
        [vps, "segment", "s/c.mp4", "--no-overlay", "-q"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    record = json.loads((work / "vps-out" / "c" / "run.json").read_text())
    bundled = json.loads((ROOT / "weights" / "manifest.json").read_text())
    default = next(e for e in bundled["weights"] if e["file"] == bundled["default"])
    assert record["status"] == "complete" and record["weights_sha256"] == default["sha256"]
    assert Path(record["weights"]).is_relative_to(venv)
    doctor = subprocess.run(
        [vps, "doctor", "--json"], cwd=work, env=env, capture_output=True, text=True, timeout=300
    )
    assert default["file"] in doctor.stdout
