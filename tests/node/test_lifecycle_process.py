"""The policy node as a managed node in its own process (issue 9, item 3): autostart failure exits
non-zero, without autostart `vla-steer lifecycle` drives it, and SIGINT / SIGTERM stop the
inference thread before the context goes (no `RCLError: publisher's context is invalid`)."""

from __future__ import annotations

import signal

import pytest

from .conftest import Driver, NodeProcess, write_params

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    from vla_steer_tools.cli.main import main

    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_autostart_with_a_model_that_fails_to_load_exits_non_zero(tmp_path, direction_dir):
    params = write_params(tmp_path / "params.yaml", **{"autostart": True, "model.path": str(tmp_path / "missing"),
                                                       "steering.direction_dirs": [str(direction_dir)]})
    node = NodeProcess(params, tmp_path / "node.log")
    try:
        code = node.proc.wait(timeout=180)
    finally:
        node.stop()
    assert code == 1, node.log()
    assert "configure failed" in node.log() and "missing" in node.log()


def test_without_autostart_vla_steer_lifecycle_drives_the_node(tmp_path, tiny_openvla, direction_dir, real_images,
                                                                capsys):
    params = write_params(tmp_path / "params.yaml", **{
        "autostart": False, "model.path": str(tiny_openvla), "steering.direction_dirs": [str(direction_dir)],
        "output.lockstep": False, "control_hz": 5.0})
    node = NodeProcess(params, tmp_path / "node.log")
    driver = Driver(real_images, name="lifecycle_driver")
    try:
        driver.wait_until_connected(timeout_s=120.0)
        assert _cli(capsys, "lifecycle", "get", "/vla_policy", "--timeout", "60")[1].strip() == "unconfigured [1]"
        code, _, err = _cli(capsys, "lifecycle", "set", "/vla_policy", "activate")
        assert code == 2 and "not available" in err and "configure" in err
        driver.send_instruction()
        driver.start_stream(hz=10.0)
        code, out, _ = _cli(capsys, "lifecycle", "set", "/vla_policy", "configure")
        assert code == 0 and "Transitioning successful" in out
        assert _cli(capsys, "lifecycle", "get", "/vla_policy")[1].strip() == "inactive [2]"
        assert driver.get("action") == []  # configured but inactive: nothing commanded
        assert "activate" in _cli(capsys, "lifecycle", "list", "/vla_policy")[1]
        assert _cli(capsys, "lifecycle", "set", "/vla_policy", "activate")[0] == 0
        assert _cli(capsys, "lifecycle", "get", "/vla_policy")[1].strip() == "active [3]"
        driver.wait_for(lambda: driver.get("action"), 300.0, "commands once active")
        assert _cli(capsys, "lifecycle", "set", "/vla_policy", "deactivate")[0] == 0
        assert _cli(capsys, "lifecycle", "set", "/vla_policy", "cleanup")[0] == 0
        assert _cli(capsys, "lifecycle", "get", "/vla_policy")[1].strip() == "unconfigured [1]"
        assert node.alive()
    finally:
        driver.close()
        code = node.stop()
    assert code == 0, node.log()[-3000:]
    log = node.log()
    assert "model freed" in log and "RCLError" not in log and "Traceback" not in log


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_inferring_stops_cleanly(tmp_path, tiny_openvla, direction_dir, real_images, sig):
    params = write_params(tmp_path / "params.yaml", **{
        "model.path": str(tiny_openvla), "steering.direction_dirs": [str(direction_dir)],
        "output.lockstep": False, "control_hz": 20.0})
    node = NodeProcess(params, tmp_path / "node.log")
    driver = Driver(real_images, name="signal_driver")
    try:
        driver.wait_until_connected(timeout_s=120.0)
        driver.send_instruction()
        driver.start_stream(hz=30.0)
        driver.wait_for(lambda: len(driver.get("chunk")) >= 3, 300.0, "inferences running")
        node.proc.send_signal(sig)
        code = node.proc.wait(timeout=60)
    finally:
        driver.close()
        node.stop()
    assert code == 0, node.log()[-3000:]
    assert "context is invalid" not in node.log() and "Traceback" not in node.log()
