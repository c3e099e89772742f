"""vps uses no network at run time: the libraries it loads send no usage statistics either.

OpenVINO's converter (loaded by ``import openvino``) and NNCF report to Google Analytics unless the user
opted out, and Ray reports from the clusters it starts; vps turns all three off in its own processes."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

#: what OpenVINO's telemetry, NNCF and Ray read to decide they run in CI (and stay quiet there): removed,
#: so that the check below sees what a user's machine sees
_CI_VARIABLES = ("CI", "TF_BUILD", "JENKINS_URL", "NNCF_CI", "NNCF_DEV")


@pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="openvino is not installed")
def test_openvino_and_nncf_load_with_their_telemetry_off(tmp_path):
    """In a fresh process, with a fresh home: vps's backends module first, then OpenVINO (and NNCF): the
    converter's telemetry is its no-op stub, NNCF's is not the real one, and no telemetry client id was
    written to the home folder (the first thing the real package does)."""
    code = [
        "import vpscli.backends.runtimes, openvino",
        "from openvino.tools.ovc import telemetry_utils",
        "print(telemetry_utils.tm.__name__)",
    ]
    if importlib.util.find_spec("nncf") is not None:
        code += [
            "import nncf.telemetry.wrapper as w",
            "print('nncf-real' if isinstance(w.telemetry, w.NNCFTelemetry) else 'nncf-stub')",
        ]
    env = {k: v for k, v in os.environ.items() if k not in _CI_VARIABLES}
    env["HOME"] = str(tmp_path)
    # a broken guard would fork a sender that can wait minutes for a DNS answer: bounded here
    done = subprocess.run(
        [sys.executable, "-c", "\n".join(code)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    said = done.stdout.split()
    assert said[0] == "openvino.tools.ovc.telemetry_stub"
    assert said[1:] in ([], ["nncf-stub"])
    assert not (tmp_path / "intel").exists()


def test_ray_starts_without_usage_statistics_unless_the_user_chose(monkeypatch):
    pytest.importorskip("ray")
    from vpscli.batch.ray_cluster import import_ray

    # a chosen auth mode keeps import_ray's token rule from changing the environment the later tests'
    # Ray instances start with (monkeypatch restores both variables)
    monkeypatch.setenv("RAY_AUTH_MODE", os.environ.get("RAY_AUTH_MODE") or "disabled")
    monkeypatch.delenv("RAY_USAGE_STATS_ENABLED", raising=False)
    import_ray()
    assert os.environ["RAY_USAGE_STATS_ENABLED"] == "0"  # inherited by the Ray processes vps starts
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "1")
    import_ray()
    assert os.environ["RAY_USAGE_STATS_ENABLED"] == "1"
