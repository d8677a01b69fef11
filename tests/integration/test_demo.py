"""`make demo`'s command, end to end and small: sim + policy composed in one process, steering
switched on over DDS half way, a bag recorded and a report written from it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from vla_steer_tools.analysis.bags import bag_topics


@pytest.mark.slow
@pytest.mark.ros
def test_demo_runs_records_and_reports(tmp_path):
    out = tmp_path / "demo"
    cmd = [sys.executable, "-m", "vla_steer_tools.cli.main", "demo", "--steps", "12", "--image-size", "64",
           "--model-family", "openvla", "--model-path", ".state/checkpoints/tiny-openvla", "--suite", "libero_10",
           "--task-id", "0", "--concept", "up", "--execute-steps", "1", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=420, env=dict(os.environ))
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert "RANDOM-WEIGHT" in log and "switching steering ON" in log, log[-2000:]

    report = json.loads((out / "report.json").read_text())
    assert report["random_weights"] is True
    assert report["concepts"] == ["up"] and report["alphas"] == [10.0]
    assert report["steering_on_s"] is not None
    assert report["before"]["steps"] >= 3 and report["after"]["steps"] >= 3, report

    topics = bag_topics(out / "bag")
    for topic in ("/ee_pose", "/vla/action", "/vla/action_chunk", "/vla/steering_state", "/vla/concept_activations"):
        assert topics.get(topic, ("", 0))[1] > 0, f"nothing recorded on {topic}: {topics}"
    # one ee_delta command per simulator step in lockstep
    assert topics["/vla/action"][1] >= 12
    assert (out / "trajectory.png").stat().st_size > 20_000
    assert "direction up: 10 neurons" in log, log[-2000:]  # the shipped config/directions/tiny-openvla/up.yaml
