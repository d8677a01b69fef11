"""Issue 11, end to end: the policy node and the UR5e twin in SEPARATE processes (one ROS domain,
tests/conftest.py's), the policy node fed a scripted action cycle (ur5_scripted_policy.py) so
the expected motion is known. Three policy processes serve every case (importing the node costs
~5 s of CPU each): `vla_policy_traj`, `vla_policy_pos` and `vla_policy_ik` (output.mode
joint_trajectory, joint_position, ee_delta_ik); all start in dry run and a case switches on the
one it drives (dry_run, limits, lockstep and the watchdog are run-time parameters; output.mode is not).
The cases run in file order on the one arm, each driven from where the last left it; a process is
never switched on after the OTHER process moved the arm (its first step would start from its own
last command, far from the arm: refused by its gate, rightly). In lockstep the twin steps once per command, so nothing here depends on how fast a process runs:
every wait is for a condition (with a generous timeout), never for a duration. The hold/resume
case needs sim time to pass with no command, so it restarts the twin in realtime; its assertions
are on the twin's state once commands have stopped.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import yaml

pytestmark = [pytest.mark.ros, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
IMAGE_PX = 64  # small frames: rendering is most of a twin step on a software renderer
PAN, LIFT, ELBOW = 0, 1, 2
STEP_RAD = 0.05  # limits.max_joint_vel_rad_s 0.5 x 1/control_hz 0.1: the most a joint moves per command
TRAJECTORY = "/scaled_joint_trajectory_controller/joint_trajectory"
POSITION = "/forward_position_controller/commands"


class Proc:
    """A child process with its output in a log file; stopped with SIGINT (then killed)."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.log_path, self._log = log, open(log, "wb")
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=str(ROOT))

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(2)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()


def start_twin(tmp: Path, mode: str) -> Proc:
    return Proc([sys.executable, "-m", "ur5_sim.twin_node", "--ros-args", "--params-file", str(ROOT / "config/ur5_sim.yaml"),
                 "-p", f"mode:={mode}", "-p", f"image_size:={IMAGE_PX}", "-p", "rate_hz:=10.0", "-p", "step_s:=0.1",
                 "-p", "republish_period_s:=0.5"], tmp / f"twin_{mode}.log")


def policy_params(path: Path, **overrides: Any) -> Path:
    """config/policy_ur5_sim.yaml with `overrides`, keyed `/**` (the processes rename the node)."""
    data = yaml.safe_load((ROOT / "config/policy_ur5_sim.yaml").read_text())
    params = data["vla_policy"]["ros__parameters"]
    base = {"cameras.width_px": IMAGE_PX, "cameras.height_px": IMAGE_PX, "control_hz": 10.0,
            "chunk.execute_steps": 5, "output.dry_run": True,
            "steering.direction_dirs": [str(ROOT / "config/directions/tiny-openvla")]}
    for name, value in {**base, **overrides}.items():
        *groups, leaf = name.split(".")
        node = params
        for g in groups:
            node = node[g]
        node[leaf] = value
    path.write_text(yaml.safe_dump({"/**": data["vla_policy"]}))
    return path


def start_policy(tmp: Path, name: str, **overrides: Any) -> Proc:
    params = policy_params(tmp / f"{name}.yaml", **overrides)
    space = "ee_delta_7d" if overrides.get("output.mode", "").startswith("ee") else "joint_delta_7d"
    return Proc([sys.executable, str(ROOT / "tests/integration/ur5_scripted_policy.py"), str(params), name, space],
                tmp / f"{name}.log")


class Observer:
    """The test's own node: records joint_states, both command topics, chunks and the twin's diagnostics."""

    def __init__(self) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Float64MultiArray
        from trajectory_msgs.msg import JointTrajectory
        from vla_steer_msgs.msg import ActionChunk

        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = Node(f"ur5_e2e_observer_{os.getpid()}", context=self.context)
        self._lock = threading.Lock()
        from geometry_msgs.msg import PoseStamped

        self.records: dict[str, list] = {k: [] for k in ("joints", "trajectory", "position", "chunk", "twin", "ee", "tool")}
        for key, msg_type, topic in (("ee", PoseStamped, "ee_pose"), ("tool", PoseStamped, "ur5_sim/tool_pose"),
                                     ("joints", JointState, "joint_states"), ("trajectory", JointTrajectory, TRAJECTORY),
                                     ("position", Float64MultiArray, POSITION), ("chunk", ActionChunk, "vla/action_chunk"),
                                     ("twin", DiagnosticArray, "diagnostics")):
            self.node.create_subscription(msg_type, topic, self._recorder(key), 50)
        self._scripts: dict[str, Any] = {}
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        threading.Thread(target=self.executor.spin, daemon=True).start()

    def _recorder(self, key: str) -> Callable[[Any], None]:
        def record(msg: Any) -> None:
            if key == "twin":
                status = [s for s in msg.status if s.name == "ur5_sim"]
                if not status:
                    return
                msg = {kv.key: kv.value for kv in status[0].values}
                with self._lock:  # how many commands this observer had seen when the report came
                    msg["_seen"] = len(self.records["trajectory"]) + len(self.records["position"])
            with self._lock:
                self.records[key].append(msg)
        return record

    def count(self, key: str) -> int:
        with self._lock:
            return len(self.records[key])

    def since(self, key: str, start: int) -> list:
        with self._lock:
            return list(self.records[key][start:])

    def position(self, key: str) -> np.ndarray:
        """Latest (3,) position of PoseStamped records `key` ("ee": the node's FK, base_link; "tool": the twin's)."""
        with self._lock:
            p = self.records[key][-1].pose.position
        return np.array([p.x, p.y, p.z])

    def joints(self) -> np.ndarray:
        with self._lock:
            return np.array(self.records["joints"][-1].position)

    def wait_for(self, predicate: Callable[[], Any], what: str, procs: tuple[Proc, ...] = (), timeout_s: float = 90.0) -> Any:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            for p in procs:
                assert p.proc.poll() is None, f"{p.log_path.name} exited:\n{p.log()[-3000:]}"
            time.sleep(0.05)
        logs = "\n".join(f"--- {p.log_path.name}\n{p.log()[-3000:]}" for p in procs)
        raise AssertionError(f"timed out waiting for {what}\n{logs}")

    def applied(self) -> int:
        """The twin's commands_applied in its latest diagnostics (-1 before the first)."""
        with self._lock:
            twin = self.records["twin"]
            return int(twin[-1]["commands_applied"]) if twin else -1

    def set_params(self, node: str, **values: Any) -> None:
        """All `values` on /<node> in one set_parameters_atomically call (names with dots as keyword
        `**{"output.dry_run": True}`): a pair such as the workspace box's min and max is checked
        together, as a user must set it (one at a time, the first half of a new box is refused)."""
        from rcl_interfaces.srv import SetParametersAtomically
        from rclpy.parameter import Parameter

        client = self.node.create_client(SetParametersAtomically, f"/{node}/set_parameters_atomically")
        try:
            assert client.wait_for_service(timeout_sec=60.0), f"/{node} has no parameter service"
            request = SetParametersAtomically.Request(
                parameters=[Parameter(k, value=v).to_parameter_msg() for k, v in values.items()])
            future = client.call_async(request)
            deadline = time.monotonic() + 60.0
            while not future.done() and time.monotonic() < deadline:
                time.sleep(0.02)
            assert future.done(), f"set_parameters_atomically on /{node} timed out"
            result = future.result().result
            assert result.successful, result.reason
        finally:
            self.node.destroy_client(client)

    def script(self, node: str, actions: list[list[float]], space: str = "joint_delta_7d") -> None:
        """The action cycle of scripted policy process `node` (latched, so it also reaches a late one)."""
        import json

        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        from std_msgs.msg import String

        if node not in self._scripts:
            latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
            self._scripts[node] = self.node.create_publisher(String, f"ur5_e2e/{node}/script", latched)
        self._scripts[node].publish(String(data=json.dumps({"space": space, "actions": actions, "rows": 5})))

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=2.0)
        self.node.destroy_node()
        self.context.try_shutdown()


NAMES = {"joint_trajectory": "vla_policy_traj", "joint_position": "vla_policy_pos", "ee_delta_ik": "vla_policy_ik"}


class Cell:
    """The twin and both scripted policy processes, shared by the module's cases."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.twin = start_twin(tmp, "lockstep")
        self.policies = {"joint_trajectory": start_policy(tmp, "vla_policy_traj", **{"output.mode": "joint_trajectory"}),
                         "joint_position": start_policy(tmp, "vla_policy_pos", **{"output.mode": "joint_position"}),
                         "ee_delta_ik": start_policy(tmp, "vla_policy_ik", **{"output.mode": "ee_delta_ik"})}
        self.observer = Observer()

    @property
    def procs(self) -> tuple[Proc, ...]:
        return (self.twin, *self.policies.values())

    def restart_twin(self, mode: str) -> None:
        self.twin.stop()
        self.twin = start_twin(self.tmp, mode)

    def close(self) -> None:
        for p in self.procs:
            p.stop()
        self.observer.close()


@pytest.fixture(scope="module")
def cell(tmp_path_factory):
    cell = Cell(tmp_path_factory.mktemp("ur5_e2e"))
    try:
        obs = cell.observer
        obs.wait_for(lambda: obs.count("joints") and obs.applied() >= 0, "the twin's first joint_states", cell.procs)
        obs.wait_for(lambda: obs.count("chunk") >= 2, "chunks from the policy processes", cell.procs, timeout_s=180.0)
        yield cell
    finally:
        cell.close()


def drive(cell: Cell, mode: str, actions: list[list[float]], commands: int, space: str = "joint_delta_7d",
          until: Callable[[], bool] | None = None, **params: Any) -> tuple[np.ndarray, list]:
    """Policy `mode` commands `actions` (others stay in dry run) until the twin applied `commands`
    of them; then back to dry run. Returns (joints before, the commands seen on the wire)."""
    obs, name = cell.observer, NAMES[mode]
    topic = "position" if mode == "joint_position" else "trajectory"
    settle(cell)
    fresh_reference(cell, name, space)
    obs.script(name, actions, space)
    start_cmds, start_applied, start_q = obs.count(topic), obs.applied(), obs.joints()
    obs.set_params(name, **params, **{"output.dry_run": False})
    try:
        obs.wait_for(lambda: obs.count(topic) - start_cmds >= commands, f"{commands} commands on {topic}", cell.procs)
        obs.wait_for(lambda: obs.applied() - start_applied >= commands, "the twin to apply them", cell.procs)
        if until is not None:
            obs.wait_for(until, "the arm's goal", cell.procs)
    finally:
        obs.script(name, [[0.0] * 7], "joint_delta_7d" if space.startswith("joint") else space)  # idle
        obs.set_params(name, **{"output.dry_run": True})
    return start_q, obs.since(topic, start_cmds)


def fresh_reference(cell: Cell, name: str, space: str) -> None:
    """Make process `name`'s rate-limit reference the arm's measured joints before it goes live.

    In dry run the node still runs every step through CommandBuilder.build, which records it as
    `last_joint_command` although nothing was published (see the report: a phantom reference on a
    real arm too); after other processes moved the arm, or after dry-run steps of a moving script,
    that reference is not where the arm is. A new joint order resets it (inputs.set_joints), and
    with a zero-motion script the dry steps after that keep it on the measured joints."""
    obs = cell.observer
    idle = [[0.0] * 7]
    obs.script(name, idle, "joint_delta_7d" if space.startswith("joint") else space)
    n = obs.count("chunk")
    model = f"scripted {name} (RANDOM WEIGHTS)"
    obs.wait_for(lambda: sum(1 for c in obs.since("chunk", n) if c.model_id == model and not any(c.data)) >= 2,
                 f"idle chunks from {name}", cell.procs)
    from ur5_sim.scene import UR_JOINTS

    for names in (list(reversed(UR_JOINTS)), list(UR_JOINTS)):
        obs.set_params(name, **{"output.joint_names": names})
        k = obs.count("joints")
        obs.wait_for(lambda: obs.count("joints") - k >= 2, "joint_states after a joint-order change", cell.procs)


def settle(cell: Cell) -> None:
    """Until nothing is in flight: across the twin's last two diagnostics (1 s apart) it applied
    no further command and none was seen on the wire (the previous case's last commands may still
    be on their way when it ends)."""
    obs = cell.observer

    def quiet() -> bool:
        last = obs.since("twin", max(0, obs.count("twin") - 2))
        seen = obs.count("trajectory") + obs.count("position")
        return (len(last) == 2 and last[0]["commands_applied"] == last[1]["commands_applied"]
                and last[0]["_seen"] == last[1]["_seen"] == seen)

    obs.wait_for(quiet, "the twin to catch up", cell.procs)


def command_positions(msgs: list) -> np.ndarray:
    return np.array([m.points[0].positions if hasattr(m, "points") else m.data for m in msgs])


#: limits.max_joint_vel_rad_s 0.5 plus the twin's servo transient (1.4% measured tracking a ramp from rest)
MAX_JOINT_SPEED = 0.55


def peak_joint_speed(obs: Observer, since: int) -> float:
    """The largest joint speed the twin reported (joint_states velocity) since record `since`."""
    states = obs.since("joints", since)
    return float(max((np.max(np.abs(m.velocity)) for m in states if len(m.velocity)), default=0.0))


def rejected(obs: Observer) -> int:
    return int(obs.since("twin", obs.count("twin") - 1)[0]["commands_rejected"])


def _moves_in_the_commanded_direction(cell: Cell, mode: str, sign: float) -> None:
    obs = cell.observer
    action = [sign * 0.3, 0.0, -sign * 0.3, 0.0, 0.0, 0.0, 0.0]  # pan one way, elbow the other
    start, joints_at_start = obs.joints(), obs.count("joints")
    _, msgs = drive(cell, mode, [action], 6, until=lambda: sign * (obs.joints()[PAN] - start[PAN]) > 4 * STEP_RAD)
    moved = obs.joints() - start
    assert sign * moved[PAN] > 4 * STEP_RAD and -sign * moved[ELBOW] > 4 * STEP_RAD, moved
    assert np.all(np.abs(np.delete(moved, [PAN, ELBOW])) < 0.03), moved  # servo coupling only
    steps = np.diff(command_positions(msgs), axis=0)
    assert np.all(np.abs(steps) <= STEP_RAD + 1e-6), steps  # the rate limit, command to command
    if mode == "joint_trajectory":  # joint_position is a step per command: the servo sets its speed (README)
        assert peak_joint_speed(obs, since=joints_at_start) <= MAX_JOINT_SPEED, "the arm moved faster than the limit"


def test_joint_trajectory_moves_the_arm_in_the_commanded_direction(cell):
    _moves_in_the_commanded_direction(cell, "joint_trajectory", +1.0)


def test_out_of_limit_and_nan_actions_never_leave_the_limits(cell):
    obs = cell.observer
    settle(cell)
    q0 = obs.joints()
    lo, hi = [-6.28] * 6, [6.28] * 6
    lo[ELBOW], hi[ELBOW] = -3.14, 3.14
    hi[PAN] = round(float(q0[PAN]) + 0.15, 4)  # a pan limit the actions push through
    actions = [[math.nan] * 7, [1e300] * 7, [7.0, 0, 0, 0, 0, 0, 0], [math.inf, 0, 0, 0, 0, 0, 0], [0.3, 0, 0, 0, 0, 0, 0]]
    rejected_before = rejected(obs)
    limits = {"limits.joint_position_min_rad": lo, "limits.joint_position_max_rad": hi}
    _, msgs = drive(cell, "joint_trajectory", actions, 12, **limits)
    obs.wait_for(lambda: obs.joints()[PAN] > hi[PAN] - 0.01, "pan to reach its limit", cell.procs)
    _, later = drive(cell, "joint_trajectory", actions, 5, **limits)  # pushing on, at the limit
    sent = command_positions(msgs + later)
    assert np.all(np.isfinite(sent)) and np.all(sent[:, PAN] <= hi[PAN] + 1e-9), sent[:, PAN]
    for stream in (msgs, later):  # command to command within each stream (between the two the node's
        # reference restarts from the measured arm, which in lockstep may trail the last command a little)
        jumps = np.abs(np.diff(command_positions(stream), axis=0))
        assert np.all(jumps <= STEP_RAD + 1e-6), np.argwhere(jumps > STEP_RAD + 1e-6).tolist()
    assert obs.joints()[PAN] <= hi[PAN] + 0.005
    assert rejected(obs) == rejected_before, "a malformed command reached the twin"
    assert "non-finite" in cell.policies["joint_trajectory"].log()  # refused by the node, with its reason
    default = yaml.safe_load((ROOT / "config/policy_ur5_sim.yaml").read_text())["vla_policy"]["ros__parameters"]["limits"]
    obs.set_params("vla_policy_traj", **{"limits.joint_position_min_rad": default["joint_position_min_rad"],
                                         "limits.joint_position_max_rad": default["joint_position_max_rad"]})


def test_dry_run_sends_nothing(cell):
    obs = cell.observer
    settle(cell)
    before = {k: obs.count(k) for k in ("trajectory", "position", "chunk")}
    applied, q0 = obs.applied(), obs.joints()
    for name in ("vla_policy_traj", "vla_policy_pos"):
        obs.script(name, [[0.3, 0, 0.3, 0, 0, 0, 0]])  # would move, if anything were sent
    obs.wait_for(lambda: obs.count("chunk") - before["chunk"] >= 6, "chunks in dry run", cell.procs)
    n = obs.count("twin")
    obs.wait_for(lambda: obs.count("twin") > n, "twin diagnostics", cell.procs)
    for name in ("vla_policy_traj", "vla_policy_pos"):
        obs.script(name, [[0.0] * 7])  # idle again
    assert obs.count("trajectory") == before["trajectory"] and obs.count("position") == before["position"]
    assert obs.applied() == applied
    assert np.allclose(obs.joints(), q0, atol=1e-6)


def test_ee_delta_ik_moves_the_tool_in_the_commanded_direction(cell):
    """+x in base_link (the node's ee_pose, its FK of joint_states) through the node's IK; the twin's
    own tool pose (MuJoCo, UR `base` frame = base_link turned 180 deg about z) moves -x."""
    obs = cell.observer
    settle(cell)
    ee0, tool0 = obs.position("ee"), obs.position("tool")
    k0 = obs.count("joints")
    _, msgs = drive(cell, "ee_delta_ik", [[0.01, 0, 0, 0, 0, 0, 0]], 6, space="ee_delta_7d",
                    until=lambda: obs.position("ee")[0] - ee0[0] > 0.04)
    assert peak_joint_speed(obs, since=k0) <= MAX_JOINT_SPEED
    settle(cell)
    d_ee, d_tool = obs.position("ee") - ee0, obs.position("tool") - tool0
    assert d_ee[0] > 0.04 and np.all(np.abs(d_ee[1:]) < 0.01), d_ee
    assert np.allclose(d_tool, [-d_ee[0], -d_ee[1], d_ee[2]], atol=0.005), (d_tool, d_ee)
    assert np.all(np.abs(np.diff(command_positions(msgs), axis=0)) <= STEP_RAD + 1e-6)


def test_the_workspace_box_stops_the_tool_at_its_wall_and_nan_steps_are_refused(cell):
    """ee_delta_ik pushing +x through a wall 2 cm ahead (the box is in base_link, against the
    node's FK of joint_states), with NaN steps in the cycle: the tool stops at the wall."""
    obs = cell.observer
    settle(cell)
    ee0 = obs.position("ee")
    wall = round(float(ee0[0]) + 0.02, 4)
    box = {"limits.workspace_min_m": [-1.5, -1.5, -0.5], "limits.workspace_max_m": [wall, 1.5, 1.5]}
    push = [0.015, 0, 0, 0, 0, 0, 0]
    actions = [push, [math.nan] * 7, push, [math.inf, 0, 0, 0, 0, 0, 0], push]
    _, msgs = drive(cell, "ee_delta_ik", actions, 8, space="ee_delta_7d",
                    until=lambda: obs.position("ee")[0] > wall - 0.003, **box)
    _, more = drive(cell, "ee_delta_ik", actions, 4, space="ee_delta_7d", **box)  # pushing on, at the wall
    settle(cell)
    ee = obs.position("ee")
    assert wall - 0.003 < ee[0] <= wall + 0.003, (ee, wall)
    for stream in (msgs, more):
        sent = command_positions(stream)
        assert np.all(np.isfinite(sent)) and np.all(np.abs(np.diff(sent, axis=0)) <= STEP_RAD + 1e-6)
    assert "non-finite" in cell.policies["ee_delta_ik"].log()


def test_joint_position_moves_the_arm_in_the_commanded_direction(cell):
    _moves_in_the_commanded_direction(cell, "joint_position", -1.0)


def test_stopping_the_cameras_holds_the_arm_and_it_resumes(cell):
    """Realtime twin (sim time passes without commands). Cameras off -> the node's watchdog holds
    (no new command without frames) -> the arm is still; cameras on -> it moves again."""
    obs, name = cell.observer, "vla_policy_pos"  # the process that commanded last (its reference = the arm)
    cell.restart_twin("realtime")
    n = obs.count("twin")
    obs.wait_for(lambda: obs.count("twin") > n and obs.since("twin", n)[-1]["mode"] == "realtime", "the realtime twin",
                 cell.procs)
    fresh_reference(cell, name, "joint_delta_7d")
    obs.script(name, [[0.3, 0, 0, 0, 0, 0, 0]])
    obs.set_params(name, **{"output.lockstep": False, "watchdog.max_input_age_s": 0.5,
                            "watchdog.max_observation_age_s": 1.5, "output.dry_run": False})
    try:
        start = obs.joints()
        obs.wait_for(lambda: obs.joints()[PAN] - start[PAN] > 3 * STEP_RAD, "the arm to move", cell.procs)
        obs.set_params("ur5_sim", publish_images=False)
        obs.wait_for(lambda: _applied_steady(obs), "commands to stop", cell.procs)  # held
        n = obs.count("joints")
        obs.wait_for(lambda: obs.count("joints") - n >= 3, "joint_states while held", cell.procs)
        held = obs.since("joints", n)
        velocities, positions = np.array([m.velocity for m in held]), np.array([m.position for m in held])
        assert np.all(np.abs(velocities) < 0.02), velocities
        assert np.ptp(positions, axis=0).max() < 2e-3
        obs.set_params("ur5_sim", publish_images=True)
        obs.wait_for(lambda: obs.joints()[PAN] - positions[-1, PAN] > 2 * STEP_RAD, "the arm to resume", cell.procs)
    finally:
        obs.set_params(name, **{"output.dry_run": True})


def _applied_steady(obs: Observer) -> bool:
    """The twin applied no command across its last three diagnostics (1 s apart), cameras off."""
    twin = obs.since("twin", max(0, obs.count("twin") - 3))
    if len(twin) < 3 or any(d["cameras_on"] != "False" for d in twin):
        return False
    return len({d["commands_applied"] for d in twin}) == 1
