"""ROS 2 node `ur5_sim`: the simulated UR5e (twin.py) on ur_robot_driver's interface.

Publishes (what the driver + cameras of a real cell give the policy node):
  joint_states (sensor_msgs/JointState: the six UR joint names, positions and velocities),
  camera/<name>/image_raw (sensor_msgs/Image rgb8, sensor-data QoS; names from `cameras`),
  gripper_state (JointState `gripper`: 0 open .. 1 closed), instruction (latched String),
  ur5_sim/tool_pose (PoseStamped: the simulator's ground-truth pinch point, for checking a
  kinematic model — deliberately NOT `ee_pose`, which the policy node computes itself),
  diagnostics (step timing, commands applied / rejected).
Executes (absolute topic names, as ur_robot_driver's controllers):
  /scaled_joint_trajectory_controller/joint_trajectory (trajectory_msgs/JointTrajectory): points
    followed by `time_from_start` from the moment it arrives (header.stamp is ignored), linearly
    interpolated; a new trajectory replaces the old one from the current setpoint;
  /forward_position_controller/commands (std_msgs/Float64MultiArray): six absolute positions, rad;
  /gripper/command (std_msgs/Float64): 0 = open .. 1 = closed (the 2F-85's actuator range).
A malformed command (joint names other than the six, wrong length, NaN/inf, outside the joint
range, non-increasing times) is rejected with a logged reason and never applied.

Modes (parameter `mode`), as the LIBERO bridge:
  * lockstep: each valid joint command advances the sim by `step_s` and then publishes the new
    observation (images first, joint_states last), so a policy node with `output.lockstep` sees
    one new frame set per command. With no command for `republish_period_s` the latest
    observation goes out again (same stamp), so a policy that held or refused a step gets a frame.
  * realtime: a timer steps `1/rate_hz` of sim time at `rate_hz`, commands take effect at once;
    ticks that find the previous step still running are skipped and counted (realtime_overruns).
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64, Float64MultiArray, Header, String
from trajectory_msgs.msg import JointTrajectory
from vla_steer_tools.errors import VlaSteerError

from .params import NODE_NAME, SPECS, check_value, from_mapping, load_defaults
from .scene import UR_JOINTS
from .trajectory import CommandError
from .twin import TwinObservation, Ur5Twin

TRAJECTORY_TOPIC = "/scaled_joint_trajectory_controller/joint_trajectory"
POSITION_TOPIC = "/forward_position_controller/commands"
GRIPPER_TOPIC = "/gripper/command"
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)


class Ur5TwinNode(Node):
    """`Ur5TwinNode(params_file=..., parameter_overrides=[...], context=...)` composes in a process."""

    def __init__(self, *, params_file: str | Path | None = None, **node_kwargs: Any) -> None:
        super().__init__(NODE_NAME, **node_kwargs)
        defaults = load_defaults(params_file)
        for spec in SPECS:
            self.declare_parameter(spec.name, defaults[spec.name], ParameterDescriptor(
                description=spec.description, read_only=spec.read_only, dynamic_typing=spec.kind is float))
        self.params = from_mapping({s.name: self.get_parameter(s.name).value for s in SPECS})
        self.add_on_set_parameters_callback(self._on_set_params)
        p = self.params
        self._publish_images = p.publish_images
        # An OpenGL (EGL) context is current on one thread: the twin lives on its own thread and
        # every call into it (`self._sim(fn)`) runs there, whichever executor thread asks.
        self._sim_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ur5_sim")
        self.twin = self._sim(lambda: Ur5Twin(image_size=p.image_size, cameras=p.cameras,
                                              initial=p.initial_positions))
        self.applied = self.rejected = self.realtime_overruns = 0
        self._last_command_wall = time.monotonic()
        self._stepping = threading.Lock()  # held while the sim steps (realtime overrun detection)
        self._latest: tuple[TwinObservation, Any] | None = None
        self._make_interfaces()
        self._publish(self._sim(self.twin.observe), self.get_clock().now().to_msg())
        self.get_logger().info(
            f"UR5e twin up: mode={p.mode} "
            + (f"step {p.step_s:g} s per command" if p.mode == "lockstep" else f"{p.rate_hz:g} Hz")
            + f", cameras {list(p.cameras)} at {p.image_size} px; commands on {TRAJECTORY_TOPIC}, "
            f"{POSITION_TOPIC}, {GRIPPER_TOPIC}")

    # -- setup ---------------------------------------------------------------------------------
    def _make_interfaces(self) -> None:
        p = self.params
        self._image_pubs = {cam: self.create_publisher(Image, f"camera/{cam}/image_raw", qos_profile_sensor_data)
                            for cam in p.cameras}
        self._joint_pub = self.create_publisher(JointState, "joint_states", RELIABLE)
        self._gripper_pub = self.create_publisher(JointState, "gripper_state", RELIABLE)
        self._pose_pub = self.create_publisher(PoseStamped, "ur5_sim/tool_pose", RELIABLE)
        self._diag_pub = self.create_publisher(DiagnosticArray, "diagnostics", RELIABLE)
        self._instruction_pub = self.create_publisher(String, "instruction", LATCHED)
        if p.instruction:
            self._instruction_pub.publish(String(data=p.instruction))
        sim = MutuallyExclusiveCallbackGroup()  # one sim: every command and step runs in turn
        self.create_subscription(JointTrajectory, TRAJECTORY_TOPIC, self._on_trajectory, RELIABLE, callback_group=sim)
        self.create_subscription(Float64MultiArray, POSITION_TOPIC, self._on_positions, RELIABLE, callback_group=sim)
        self.create_subscription(Float64, GRIPPER_TOPIC, self._on_gripper, RELIABLE, callback_group=sim)
        if p.mode == "realtime":
            self.create_timer(1.0 / p.rate_hz, self._realtime_tick, callback_group=MutuallyExclusiveCallbackGroup())
        else:
            self.create_timer(min(0.25, p.republish_period_s), self._republish, callback_group=sim)
        self.create_timer(1.0, self._publish_diagnostics)

    def _on_set_params(self, changes: list) -> SetParametersResult:
        for change in changes:
            try:
                check_value(change.name, change.value)
            except (VlaSteerError, ValueError) as exc:
                return SetParametersResult(successful=False, reason=str(exc))
        for change in changes:
            if change.name == "publish_images":
                self._publish_images = bool(change.value)
                self.get_logger().info(f"cameras {'on' if change.value else 'OFF (silent)'}")
            elif change.name == "instruction" and change.value:
                self._instruction_pub.publish(String(data=change.value))
        return SetParametersResult(successful=True)

    def _sim(self, fn: Any) -> Any:
        """Run `fn()` on the twin's thread and return its result (exceptions propagate)."""
        return self._sim_thread.submit(fn).result()

    # -- commands ------------------------------------------------------------------------------
    def _on_trajectory(self, msg: JointTrajectory) -> None:
        offsets = [pt.time_from_start.sec + 1e-9 * pt.time_from_start.nanosec for pt in msg.points]
        self._apply(TRAJECTORY_TOPIC, lambda: self.twin.command_trajectory(
            list(msg.joint_names), offsets, [list(pt.positions) for pt in msg.points]))

    def _on_positions(self, msg: Float64MultiArray) -> None:
        self._apply(POSITION_TOPIC, lambda: self.twin.command_positions(list(msg.data)))

    def _on_gripper(self, msg: Float64) -> None:
        try:
            self._sim(lambda: self.twin.command_gripper(msg.data))
        except CommandError as exc:
            self._reject(GRIPPER_TOPIC, exc)

    def _apply(self, topic: str, command: Any) -> None:
        """Check + apply a joint command; in lockstep, then step and publish."""
        try:
            with self._stepping:
                self._sim(command)
        except CommandError as exc:
            self._reject(topic, exc)
            return
        self._last_command_wall = time.monotonic()
        if self.params.mode == "lockstep":
            self._step(self.params.step_s)
        self.applied += 1  # counted once its observation is out (lockstep): diagnostics never run ahead

    def _reject(self, topic: str, exc: Exception) -> None:
        self.rejected += 1
        self.get_logger().warning(f"rejected command on {topic}: {exc}; not applied",
                                  throttle_duration_sec=1.0)

    # -- stepping and publishing ---------------------------------------------------------------
    def _step(self, duration_s: float) -> None:
        with self._stepping:
            obs = self._sim(lambda: self._advance_and_observe(duration_s))
        self._publish(obs, self.get_clock().now().to_msg())

    def _advance_and_observe(self, duration_s: float) -> TwinObservation:
        self.twin.advance(duration_s)
        return self.twin.observe(render=self._publish_images)

    def _realtime_tick(self) -> None:
        if self._stepping.locked():
            self.realtime_overruns += 1
            return
        self._step(1.0 / self.params.rate_hz)

    def _republish(self) -> None:
        """Lockstep: no command for republish_period_s -> the latest observation again."""
        if time.monotonic() - self._last_command_wall < self.params.republish_period_s:
            return
        self._last_command_wall = time.monotonic()
        if self._latest is not None:
            obs, stamp = self._latest
            if self._publish_images and not obs.images:
                obs = self._sim(self.twin.observe)
            self._publish(obs, stamp)

    def _publish(self, obs: TwinObservation, stamp: Any) -> None:
        """Images first, joint_states last (a consumer can take joint_states as 'frame complete')."""
        self._latest = (obs, stamp)
        header = Header(stamp=stamp)
        if self._publish_images:
            for cam, pub in self._image_pubs.items():
                if cam in obs.images:
                    pub.publish(image_msg(obs.images[cam], Header(stamp=stamp, frame_id=f"{cam}_camera")))
        pose = PoseStamped(header=Header(stamp=stamp, frame_id=self.params.frame_id))
        pose.pose.position.x, pose.pose.position.y, pose.pose.position.z = (float(v) for v in obs.ee_pos)
        q = pose.pose.orientation
        q.x, q.y, q.z, q.w = (float(v) for v in obs.ee_quat_xyzw)
        self._pose_pub.publish(pose)
        self._gripper_pub.publish(JointState(header=header, name=["gripper"], position=[obs.gripper]))
        self._joint_pub.publish(JointState(header=header, name=list(UR_JOINTS),
                                           position=[float(v) for v in obs.joint_pos],
                                           velocity=[float(v) for v in obs.joint_vel]))

    def _publish_diagnostics(self) -> None:
        t = self.twin.timing
        values = {"mode": self.params.mode, "sim_time_s": round(self.twin.time_s, 3),
                  "physics_ms": round(t.physics_s * 1e3, 2), "render_ms": round(t.render_s * 1e3, 1),
                  "commands_applied": self.applied, "commands_rejected": self.rejected,
                  "realtime_overruns": self.realtime_overruns, "cameras_on": self._publish_images}
        status = DiagnosticStatus(level=DiagnosticStatus.OK if not self.rejected else DiagnosticStatus.WARN,
                                  name="ur5_sim", message="running", hardware_id="ur5_sim")
        status.values = [KeyValue(key=k, value=str(v)) for k, v in values.items()]
        self._diag_pub.publish(DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()),
                                               status=[status]))

    def destroy_node(self) -> None:
        self._sim(self.twin.close)
        self._sim_thread.shutdown()
        super().destroy_node()


def image_msg(rgb: np.ndarray, header: Header) -> Image:
    """uint8 (H, W, 3) RGB -> sensor_msgs/Image rgb8."""
    height, width = rgb.shape[:2]
    msg = Image(header=header, height=height, width=width, encoding="rgb8", is_bigendian=0, step=width * 3)
    msg.data = np.ascontiguousarray(rgb).tobytes()
    return msg


def main(args: list[str] | None = None) -> None:
    """`ros2 run ur5_sim twin [--ros-args -p mode:=realtime ...]`."""
    logging.basicConfig(level=logging.INFO, format="[%(levelname)s] %(name)s: %(message)s")
    rclpy.init(args=args)
    node = Ur5TwinNode()
    executor = MultiThreadedExecutor(num_threads=3)
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
