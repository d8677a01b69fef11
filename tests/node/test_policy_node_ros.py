"""The policy node in its own process, driven over real DDS by this test process.

One node process (tiny real-format OpenVLA, random weights) serves the whole module; this process
publishes real photos + instruction + joint states and records what comes back.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from .conftest import Driver, NodeProcess, write_params

pytestmark = [pytest.mark.ros, pytest.mark.slow]

CONTROL_HZ = 3.0
MAX_AGE_S = 0.6


@pytest.fixture(scope="module")
def running(tmp_path_factory, tiny_openvla, direction_dir, real_images):
    tmp = tmp_path_factory.mktemp("policy_node")
    params = write_params(tmp / "params.yaml", **{
        "model.path": str(tiny_openvla), "steering.direction_dirs": [str(direction_dir)],
        "control_hz": CONTROL_HZ, "output.lockstep": False, "output.dry_run": False,
        "watchdog.max_input_age_s": MAX_AGE_S})
    node = NodeProcess(params, tmp / "node.log")
    driver = Driver(real_images)
    try:
        driver.wait_until_connected(timeout_s=120.0)
        # autostart: configure loads the model before the node commands (minutes on a busy CPU)
        driver.wait_for(lambda: "active: commanding" in node.log() or not node.alive(), 600.0, "the model to load")
        driver.send_instruction()
        driver.start_stream(hz=15.0)
        driver.wait_for(lambda: driver.get("action") or not node.alive(), 120.0, "the first command")
        assert node.alive(), node.log()
        yield node, driver
    finally:
        driver.close()
        code = node.stop()
        assert code in (0, -2, 130), f"node exited with {code}:\n{node.log()[-3000:]}"
        assert "context is invalid" not in node.log(), "the worker published after shutdown began"


def _steady_actions(driver: Driver, since: float) -> list[np.ndarray]:
    return [np.asarray(m.data) for _, m in driver.get("action", since)]


def test_commands_come_out_finite_with_their_chunks_and_state(running):
    """What the streamed commands are. How fast they come is a wall-clock measurement and lives in
    `bench/bench_chunk_rate.py --family openvla` (this test once timed it: 3 commands in 3 s at load 8)."""
    node, driver = running
    start = time.monotonic()
    driver.wait_for(lambda: len(driver.get("action", start)) >= 3, 120.0, "three more commands")
    for action in _steady_actions(driver, start):
        assert action.shape == (7,) and np.all(np.isfinite(action))
    chunks = [m for _, m in driver.get("chunk", start)]
    assert chunks and all(c.action_space == "ee_delta_7d" and c.horizon == 1 for c in chunks)
    assert all(c.inference_time > 0 for c in chunks)
    state = driver.wait_for(lambda: driver.get("state"), 5.0, "steering state")[-1][1]
    assert state.random_weights and not state.enabled
    assert "RANDOM" in node.log()


def test_parameter_change_from_another_process_steers_the_next_inference(running):
    node, driver = running
    before = _steady_actions(driver, time.monotonic() - 1.0)
    assert before, "no commands before steering"
    results = driver.set_parameters("/vla_policy", {
        "steering.concepts": ["fast"], "steering.alpha": 50.0, "steering.enabled": True})
    assert all(r.successful for r in results), [r.reason for r in results]
    changed = time.monotonic()
    state = driver.wait_for(lambda: [m for t, m in driver.get("state", changed - 0.2) if m.enabled], 5.0,
                            "steering state with steering on")[-1]
    assert [c.name for c in state.concepts] == ["fast"] and state.concepts[0].alpha == 50.0
    steered = driver.wait_for(lambda: [m for _, m in driver.get("chunk", changed) if m.steered], 10.0,
                              "a steered chunk")[0]
    unsteered = [m for _, m in driver.get("chunk", changed) if not m.steered]
    # at most the inference already running when the change arrived was unsteered
    assert all(m.inference_index < steered.inference_index for m in unsteered)
    assert steered.inference_index >= state.inference_count
    assert not np.allclose(np.asarray(steered.data), before[-1]), "steering did not change the action"
    acts = driver.wait_for(lambda: [m for _, m in driver.get("activations", changed)
                                    if m.concept_names == ["fast"] and all(m.steered)], 5.0, "activations")
    assert math.isfinite(acts[0].mean_activation[0])
    results = driver.set_parameters("/vla_policy", {"steering.enabled": False})
    assert results[0].successful


def test_bad_parameter_values_are_rejected_with_a_reason(running):
    from rclpy.parameter import Parameter

    node, driver = running
    cases = {
        "steering.concepts": (["no_such_concept"], "no_such_concept"),
        "steering.alpha": (float("nan"), "steering.alpha"),
        "steering.mode": ("sideways", "sideways"),
        "chunk.execute_steps": (0, ""),  # rclpy's range check from our descriptor
        "control_hz": (20.0, "read-only"),
    }
    for name, (value, needle) in cases.items():
        [result] = driver.set_parameters("/vla_policy", {name: value})
        assert not result.successful, name
        assert needle in result.reason, (name, result.reason)
    [result] = driver.set_parameters("/vla_policy", {"steering.alpha": (Parameter.Type.STRING, "eight")})
    assert not result.successful
    log = node.log()
    assert "rejected parameters ['steering.concepts']" in log and "no_such_concept" in log
    assert "rejected parameter steering.alpha: wrong type" in log
    since = time.monotonic()
    driver.wait_for(lambda: len(driver.get("action", since)) >= 2, 10.0, "commands after bad parameters")
    assert node.alive()


def test_malformed_images_are_rejected_and_the_node_keeps_running(running):
    from vla_policy.conversions import rgb_to_image

    node, driver = running
    good = driver.frames["agentview"]
    wrong_encoding = rgb_to_image(np.zeros((224, 224, 3), np.uint8))
    wrong_encoding.encoding = "rgba8"
    wrong_size = rgb_to_image(np.zeros((100, 120, 3), np.uint8))
    truncated = rgb_to_image(np.zeros((224, 224, 3), np.uint8))
    truncated.data = bytes(truncated.data)[:1000]
    for bad, needle in ((wrong_encoding, "'rgba8' not supported"), (wrong_size, "is 120x100"),
                        (truncated, "1000 bytes")):
        driver.cams["agentview"].publish(bad)
        driver.wait_for(lambda: needle in node.log(), 5.0, f"log line about {needle}")
        time.sleep(1.1)  # the node throttles this warning to one per second
    diag = driver.wait_for(lambda: [m for _, m in driver.get("diag", time.monotonic() - 1.5)], 5.0, "diagnostics")
    values = {kv.key: kv.value for kv in diag[-1].status[0].values}
    assert int(values["rejected_images"]) >= 3
    assert driver.frames["agentview"] is good
    since = time.monotonic()
    driver.wait_for(lambda: len(driver.get("action", since)) >= 2, 10.0, "commands after bad images")
    assert node.alive()


def test_stale_inputs_stop_commands_and_fresh_inputs_resume_them(running):
    node, driver = running
    period = 1.0 / CONTROL_HZ
    driver.stop_stream()
    last_input = driver.last_publish
    time.sleep(MAX_AGE_S + 6 * period)
    late = [t for t, _ in driver.get("action", last_input + MAX_AGE_S + 2 * period + 0.1)]
    assert not late, f"{len(late)} commands after the inputs went stale"
    diag = driver.wait_for(
        lambda: [m for _, m in driver.get("diag", last_input) if "hold" in m.status[0].message], 3.0, "hold diagnostics")
    from diagnostic_msgs.msg import DiagnosticStatus

    assert "camera agentview" in diag[-1].status[0].message
    assert diag[-1].status[0].level == DiagnosticStatus.WARN
    driver.start_stream(hz=15.0)
    resumed = time.monotonic()
    driver.wait_for(lambda: driver.get("action", resumed), 10.0, "commands after fresh inputs")
    assert "resuming" in node.log()


def test_cli_steer_and_param(running, capsys):
    """`vla-steer steer|param` as a pip-only user runs them: once as a fresh process through the
    installed console script and entry points, then in this process (a separate rclpy context)."""
    import shutil
    import subprocess

    from vla_steer_tools.cli.main import main

    node, driver = running
    exe = shutil.which("vla-steer")
    assert exe, "vla-steer console script not installed (run tools/setup.sh)"
    out = subprocess.run([exe, "steer", "--node", "/vla_policy", "--concept", "slow", "--alpha", "8"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "steering ON" in out.stdout and "slow" in out.stdout and "RANDOM WEIGHTS" in out.stdout
    state = driver.wait_for(lambda: [m for _, m in driver.get("state") if m.enabled and m.concepts
                                     and m.concepts[0].name == "slow"], 5.0, "state from the CLI")[-1]
    assert state.concepts[0].alpha == 8.0

    def cli(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    code, stdout, _ = cli("param", "get", "/vla_policy", "steering.concepts")
    assert code == 0 and "slow" in stdout
    code, stdout, _ = cli("param", "set", "/vla_policy", "steering.alpha", "12")  # int text -> declared double
    assert code == 0 and "12.0" in stdout
    code, _, stderr = cli("param", "set", "/vla_policy", "control_hz", "5")
    assert code == 1 and "read-only" in stderr
    code, stdout, _ = cli("param", "describe", "/vla_policy", "steering.alpha")
    assert code == 0 and "alpha" in stdout.lower()
    assert "steering.alpha" in cli("param", "list", "/vla_policy")[1]
    code, _, stderr = cli("steer", "--node", "/vla_policy", "--concept", "nope")
    assert code == 2 and "nope" in stderr
    code, stdout, _ = cli("steer", "--node", "/vla_policy", "--list")
    assert code == 0 and "fast (10 neurons)" in stdout and "slow" in stdout
    code, stdout, _ = cli("steer", "--node", "/vla_policy", "--via", "params", "--concept", "fast", "--alpha", "5")
    assert code == 0
    assert cli("param", "get", "/vla_policy", "steering.alpha")[1].strip() == "5.0"
    state = driver.wait_for(lambda: [m for _, m in driver.get("state") if m.enabled and m.concepts
                                     and m.concepts[0].name == "fast" and m.concepts[0].alpha == 5.0], 5.0,
                            "state from parameters set by the CLI")
    code, stdout, _ = cli("steer", "--node", "/vla_policy", "--off")
    assert code == 0 and "steering off" in stdout
