"""`vla-steer sweep` end to end: a sweep episode is the node's episode, and a killed, resumed
two-worker Ray sweep gives the table an uninterrupted run gives."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def test_a_sweep_episode_is_the_episode_the_bridge_and_the_node_run_in_lockstep():
    """Same policy object, same init state, unsteered and steered: the sweep's runner (no DDS) and
    the composed graph (bridge + node, lockstep) give identical end-effector paths, so identical
    actions; and steering changes that path (the comparison can see a difference)."""
    pytest.importorskip("rclpy")
    from libero_sim_bridge.sweep_episode import FPS, EpisodeRunner, SweepSetup
    from vla_policy.compose import config_dir
    from vla_policy.evaluate import DEFAULT_MINIVLA, EpisodeRequest, EvalSetup, run_episodes
    from vla_steer_tools.analysis.episodes import motion_metrics
    from vla_steer_tools.models.registry import load_policy
    from vla_steer_tools.steering.directions import DirectionLibrary
    from vla_steer_tools.sweeps.plan import Cell, EpisodeKey

    policy = load_policy("minivla", DEFAULT_MINIVLA)
    dirs = [str(config_dir() / "directions" / "smollm2")]
    steps = 20
    runner = EpisodeRunner(SweepSetup("minivla", DEFAULT_MINIVLA, "libero_object", 1, max_steps=steps), policy=policy)
    fast = DirectionLibrary(dirs).get("fast").with_options(alpha=10.0)
    ours = {}
    try:
        for cell in (Cell("baseline", "baseline"), Cell("fast n=10 a=10", "concept", "fast", 10.0, 10, directions=(fast,))):
            t = runner.trace(cell, EpisodeKey("init47", init_state=47))
            ours[cell.kind] = (t, motion_metrics(t["positions"], t["openings"], FPS, runner.geometry.table_z_m,
                                                 runner.geometry.min_hold_opening_m))
    finally:
        runner.close()
    for kind, steering in (("baseline", {}), ("concept", {"concepts": ["fast"], "alpha": 10.0, "direction_dirs": dirs})):
        setup = EvalSetup(family="minivla", model_path=DEFAULT_MINIVLA, model_options={}, suite="libero_object",
                          task_id=1, image_size=64, execute_steps=4, max_steps=steps, steering=steering)
        node = run_episodes(setup, [EpisodeRequest("init47", init_state=47)], policy=policy, progress=False)[0]
        trace, m = ours[kind]
        assert node.steps == trace["steps"] == steps and node.success == trace["success"]
        for key in ("early_speed_m_s", "mean_speed_m_s", "max_height_m"):
            assert getattr(node, key) == pytest.approx(m[key], abs=1e-12), (kind, key)
    assert not np.allclose(ours["baseline"][0]["positions"], ours["concept"][0]["positions"], atol=1e-6)


def _sweep_cmd(out: Path, ckpt: Path, directions: Path, workers: int) -> list[str]:
    return [sys.executable, "-m", "vla_steer_tools.cli.main", "sweep", "--suite", "libero_spatial", "--tasks", "0",
            "--model-family", "openvla", "--model-path", str(ckpt), "--direction-dir", str(directions),
            "--concepts", "fast", "--alphas", "50", "--controls", "0", "--init-states", "0-1", "--max-steps", "8",
            "--workers", str(workers), "--out", str(out)]


def _rows(out: Path) -> list[dict]:
    from vla_steer_tools.sweeps.table import ResultsTable

    plan = json.loads((out / "plan.json").read_text())
    return ResultsTable(out, plan).sorted_rows()


def test_a_killed_and_resumed_two_worker_ray_sweep_gives_the_uninterrupted_table(tmp_path):
    from vla_steer_tools.fixtures.tiny_checkpoints import ensure_tiny_checkpoint
    from vla_steer_tools.steering.directions import Direction, save_direction
    from vla_steer_tools.types import NeuronRef

    ckpt = ensure_tiny_checkpoint("openvla", tmp_path / "checkpoints")
    directions = tmp_path / "directions"
    save_direction(Direction("fast", tuple(NeuronRef("backbone", 1, i) for i in range(10)), alpha=50.0),
                   directions / "fast.yaml")
    env = dict(os.environ, OMP_NUM_THREADS="1", RAY_USAGE_STATS_ENABLED="0")
    ref, resumed = tmp_path / "ref", tmp_path / "resumed"
    subprocess.run(_sweep_cmd(ref, ckpt, directions, 0), env=env, check=True, capture_output=True, timeout=900)
    # the Ray run, killed (with its whole process group: the local Ray instance too) after its first row
    proc = subprocess.Popen(_sweep_cmd(resumed, ckpt, directions, 2), env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = resumed / "results.jsonl"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None and not (rows.is_file() and rows.read_text().strip()):
        time.sleep(0.2)
    assert proc.poll() is None, "the sweep ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    killed_at = len(rows.read_text().splitlines())
    assert 1 <= killed_at < 4
    done = subprocess.run(_sweep_cmd(resumed, ckpt, directions, 2), env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert f"resuming: {killed_at} of 4" in done.stdout
    assert len(rows.read_text().splitlines()) == 4  # nothing repeated
    assert _rows(resumed) == _rows(ref)
    assert len({r["cell"] for r in _rows(ref)}) == 2 and (resumed / "report" / "report.md").is_file()


@pytest.mark.parametrize("argv, message", [
    (["--tasks", "0,1"], "one task per sweep"), (["--episodes", "100"], "gives only 20 starts"),
    (["--alphas", "0"], "alpha 0 is the baseline"), (["--sizes", "50"], "has 10 neurons"),
    (["--concepts", "nope"], "no direction 'nope'"), (["--workers", "-1"], "--workers -1"),
    (["--model-options", "[1, 2]"], "YAML mapping"), (["--max-steps", "0"], "must be >= 1"),
    (["--image-size", "3"], "out of range"), (["--suite", "libero_goal", "--tasks", "3"], "no scripted expert")])
def test_bad_sweep_arguments_are_clear_errors_before_any_model_or_worker_starts(argv, message, tmp_path, capsys):
    from vla_steer_tools.cli.main import main

    assert main(["sweep", *argv, "--out", str(tmp_path / "out")]) != 0
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
