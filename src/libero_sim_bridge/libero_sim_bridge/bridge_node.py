"""ROS 2 node `libero`: a LIBERO episode on the same topics as the real robot.

Publishes camera/<name>/image_raw (rgb8, sensor-data QoS), joint_states, ee_pose, gripper_state,
instruction (reliable + transient-local), libero/episode_status, libero/episode_summary and
diagnostics; executes 7-D end-effector delta actions from vla/action.
  * lockstep: one sim step per valid action received (queued in order); after every step the new
    observation goes out, images first and the status last. Until the first action of an episode
    the reset observation is re-published every `republish_period_s` with its original stamp, so
    a late subscriber gets it and a consumer can tell a repeat from a new frame.
  * realtime: a timer steps the sim at `rate_hz` with the newest action, or when none arrived
    since the last step, `realtime_idle_action` (hold = repeat, zero = no motion, gripper kept).
    Ticks that find the sim still busy are skipped and counted (diagnostics: realtime_overruns).
A malformed action (wrong length, NaN/inf) is rejected with a logged reason; the sim does not step.
The simulator lives on its own thread (sim_worker.py): the constructor returns at once and the
first episode appears when the env is built (5-15 s).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import (
    DurabilityPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray, String
from vla_steer_tools.errors import VlaSteerError

from vla_steer_msgs.msg import EpisodeStatus, EpisodeSummary
from vla_steer_msgs.srv import ResetEpisode

from . import messages
from .env import NOOP_ACTION, ActionError, LiberoEnv, SimObservation, validate_action
from .params import (
    NODE_NAME,
    SPECS,
    BridgeParams,
    check_value,
    from_mapping,
    load_defaults,
)
from .sim_worker import EpisodeInfo, EpisodeResult, SimWorker, WorkerCallbacks

#: Longest instruction override a reset accepts (characters); policies bound tokens themselves.
MAX_INSTRUCTION_CHARS = 500
#: How long the reset service waits for the simulator (env creation + reset), s.
RESET_TIMEOUT_S = 180.0
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


class LiberoBridgeNode(Node):
    """The bridge. `LiberoBridgeNode(parameter_overrides=[Parameter("task_id", value=3)])` works
    in a composed process; `params_file` replaces the installed config/libero_sim.yaml defaults."""

    def __init__(self, *, params_file: str | Path | None = None, **node_kwargs: Any) -> None:
        super().__init__(NODE_NAME, **node_kwargs)
        self.params = self._declare_params(load_defaults(params_file))
        self._lock = threading.Lock()
        self._publish_lock = threading.Lock()
        self._latest: tuple[SimObservation, EpisodeInfo, Any] | None = None
        self._awaiting_first_action = False
        self._last_action: np.ndarray | None = None
        self._fresh_action = False
        self.rejected_actions = 0
        self.realtime_overruns = 0
        self._last_warn_count = 0
        self._make_interfaces()
        self._worker = SimWorker(self._make_env, WorkerCallbacks(
            on_reset=self._on_sim_reset, on_step=self._on_sim_step,
            on_episode_end=self._on_episode_end, on_error=self._on_sim_error),
            queue_depth=self.params.action_queue_depth)
        self._worker.start()
        p = self.params
        if p.start_episode:
            self._worker.request_reset(p.suite, p.task_id, p.init_state_id).add_done_callback(
                self._log_start_result)
        self.get_logger().info(
            f"LIBERO bridge up: mode={p.mode} suite={p.suite} task={p.task_id} "
            f"init_state={p.init_state_id} image={p.image_size}px fast_render={p.fast_render}; "
            "building the simulator in the background")

    # -- setup ---------------------------------------------------------------------------------
    def _declare_params(self, defaults: dict[str, Any]) -> BridgeParams:
        for spec in SPECS:
            # dynamic_typing on floats: `-p rate_hz:=10` (an int) is accepted, not a type error
            self.declare_parameter(spec.name, defaults[spec.name], ParameterDescriptor(
                description=spec.description, read_only=spec.read_only,
                dynamic_typing=spec.kind is float,
                additional_constraints=f"one of {list(spec.choices)}" if spec.choices else ""))
        params = from_mapping({s.name: self.get_parameter(s.name).value for s in SPECS})
        self.add_on_set_parameters_callback(self._on_set_params)
        return params

    def _make_interfaces(self) -> None:
        p = self.params
        self._image_pubs = {cam: self.create_publisher(Image, f"camera/{cam}/image_raw",
                                                       qos_profile_sensor_data)
                            for cam in p.cameras}
        self._joint_pub = self.create_publisher(JointState, "joint_states", RELIABLE)
        self._pose_pub = self.create_publisher(PoseStamped, "ee_pose", RELIABLE)
        self._gripper_pub = self.create_publisher(JointState, "gripper_state", RELIABLE)
        self._instruction_pub = self.create_publisher(String, "instruction", LATCHED)
        self._status_pub = self.create_publisher(EpisodeStatus, "libero/episode_status", RELIABLE)
        self._summary_pub = self.create_publisher(
            EpisodeSummary, "libero/episode_summary",
            QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE,
                       durability=DurabilityPolicy.TRANSIENT_LOCAL))
        self._diag_pub = self.create_publisher(DiagnosticArray, "diagnostics", RELIABLE)
        control = MutuallyExclusiveCallbackGroup()
        self.create_subscription(Float64MultiArray, "vla/action", self._on_action, RELIABLE,
                                 callback_group=control)
        self.create_service(ResetEpisode, "~/reset_episode", self._on_reset_request,
                            callback_group=MutuallyExclusiveCallbackGroup())
        self.create_timer(p.republish_period_s, self._republish, callback_group=control)
        self.create_timer(1.0, self._publish_diagnostics, callback_group=control)
        if p.mode == "realtime":
            self.create_timer(1.0 / p.rate_hz, self._realtime_tick, callback_group=control)

    def _make_env(self) -> LiberoEnv:
        """Called on the sim thread: cheap (validation); the env is built at the first reset."""
        p = self.params
        return LiberoEnv(p.suite, p.task_id, p.init_state_id, image_size=p.image_size,
                         fast_render=p.fast_render, max_steps=p.max_steps,
                         settle_steps=p.settle_steps, orientation=p.image_orientation)

    def _on_set_params(self, changes: list) -> SetParametersResult:
        """Validate at set time (read-only ones are refused by rclpy itself)."""
        for change in changes:
            try:
                check_value(change.name, change.value)
            except (VlaSteerError, ValueError) as exc:
                return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    # -- actions --------------------------------------------------------------------------------
    def _on_action(self, msg: Float64MultiArray) -> None:
        try:
            action = validate_action(msg.data)
        except ActionError as exc:
            self._reject(str(exc))
            return
        if self.params.mode == "lockstep":
            reason = self._worker.submit_step(action)
            if reason:
                self._reject(reason)
            else:
                self._awaiting_first_action = False
            return
        with self._lock:
            self._last_action, self._fresh_action = action, True

    def _reject(self, reason: str) -> None:
        self.rejected_actions += 1
        self.get_logger().warning(f"rejected action on vla/action: {reason}; sim not stepped")

    def _realtime_tick(self) -> None:
        if self._worker.state != "running":
            return
        if self._worker.busy:
            self.realtime_overruns += 1
            return
        with self._lock:
            action = self._idle_action() if not self._fresh_action else self._last_action
            self._fresh_action = False
        self._worker.submit_step(action)

    def _idle_action(self) -> np.ndarray:
        """Realtime step with no new action: repeat the last one, or stand still (gripper kept)."""
        if self._last_action is None:
            return NOOP_ACTION.copy()
        if self.params.realtime_idle_action == "hold":
            return self._last_action
        still = np.zeros(7)
        still[6] = self._last_action[6]
        return still

    # -- episodes -------------------------------------------------------------------------------
    def _on_reset_request(self, request: ResetEpisode.Request,
                          response: ResetEpisode.Response) -> ResetEpisode.Response:
        suite = request.suite or self.get_parameter("suite").value
        where = (f"random placement {request.placement_seed}" if request.placement_seed >= 0
                 else f"init state {request.init_state_id}")
        self.get_logger().info(f"reset requested: {suite} task {request.task_id} {where}")
        text = str(request.instruction)
        if len(text) > MAX_INSTRUCTION_CHARS:
            response.success = False
            response.message = (f"instruction override of {len(text)} characters refused "
                                f"(at most {MAX_INSTRUCTION_CHARS})")
            return response
        future = self._worker.request_reset(suite, int(request.task_id), int(request.init_state_id),
                                            int(request.placement_seed), text)
        try:
            info: EpisodeInfo = future.result(timeout=RESET_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the caller as text
            response.success, response.message = False, f"reset failed: {exc}"
            self.get_logger().error(response.message)
            return response
        response.success = True
        response.message = (f"{info.suite} task {info.task_id} {where}, max {info.max_steps} steps")
        response.instruction = info.instruction
        return response

    def _log_start_result(self, future: Any) -> None:
        if future.exception() is not None:
            self.get_logger().error(f"first episode failed to start: {future.exception()}")

    def _on_sim_reset(self, obs: SimObservation, info: EpisodeInfo) -> None:
        with self._lock:
            self._last_action, self._fresh_action = None, False
        self._awaiting_first_action = True
        self._instruction_pub.publish(String(data=info.instruction))
        self._publish_observation(obs, info, self.get_clock().now().to_msg())
        self.get_logger().info(f"episode ready: {info.suite} task {info.task_id} init state "
                               f"{info.init_state_id} ({info.max_steps} steps max): "
                               f"{info.instruction!r}")

    def _on_sim_step(self, obs: SimObservation, info: EpisodeInfo) -> None:
        self._publish_observation(obs, info, self.get_clock().now().to_msg())

    def _on_episode_end(self, result: EpisodeResult) -> None:
        self._summary_pub.publish(messages.summary_msg(result, self.get_clock().now().to_msg()))
        m = result.metrics
        how = "interrupted by a reset" if result.interrupted else (
            "success" if result.success else "failure (step limit)")
        self.get_logger().info(
            f"episode ended ({how}): {result.info.suite} task {result.info.task_id}, "
            f"{result.steps} steps, mean ee step {m.mean_step_displacement * 1000:.2f} mm, "
            f"path {m.path_length:.3f} m, height {m.min_height:.3f}..{m.max_height:.3f} m")

    def _on_sim_error(self, message: str) -> None:
        self.get_logger().error(f"simulator: {message}")

    # -- publishing -----------------------------------------------------------------------------
    def _publish_observation(self, obs: SimObservation, info: EpisodeInfo, stamp: Any) -> None:
        """Images first, status last: a status message means the observation is complete."""
        with self._publish_lock:
            self._latest = (obs, info, stamp)
            for cam, pub in self._image_pubs.items():
                pub.publish(messages.image_msg(obs.images[cam], stamp, f"{cam}_camera"))
            self._joint_pub.publish(messages.joint_state_msg(
                messages.ARM_JOINTS, obs.joint_pos, obs.joint_vel, stamp))
            self._gripper_pub.publish(messages.joint_state_msg(
                messages.FINGER_JOINTS, obs.gripper, None, stamp))
            self._pose_pub.publish(messages.pose_msg(obs, stamp, self.params.frame_id))
            self._status_pub.publish(messages.status_msg(obs, info, stamp))

    def _republish(self) -> None:
        """Lockstep, before the first action: send the reset observation again (same stamp)."""
        latest = self._latest
        if (self.params.mode == "lockstep" and self._awaiting_first_action
                and latest is not None and latest[0].step == 0):
            self._publish_observation(*latest)

    def _publish_diagnostics(self) -> None:
        latest = self._latest
        state = self._worker.state
        warnings = self.rejected_actions + self._worker.dropped_steps
        if state == "error":
            level, text = DiagnosticStatus.ERROR, "simulator error (see log); reset to recover"
        elif warnings > self._last_warn_count:
            level, text = DiagnosticStatus.WARN, "actions rejected or dropped since last report"
        else:
            level, text = DiagnosticStatus.OK, state
        self._last_warn_count = warnings
        values = {
            "state": state, "mode": self.params.mode,
            "step": latest[0].step if latest else -1,
            "max_steps": latest[1].max_steps if latest else -1,
            "last_step_ms": round(self._worker.last_step_s * 1000, 1),
            "steps_total": self._worker.steps_total,
            "rejected_actions": self.rejected_actions,
            "dropped_steps": self._worker.dropped_steps,
            "realtime_overruns": self.realtime_overruns,
            "image_size": self.params.image_size, "fast_render": self.params.fast_render,
        }
        self._diag_pub.publish(messages.diagnostics_msg(
            "libero_sim_bridge", level, text, values, self.get_clock().now().to_msg()))

    def destroy_node(self) -> None:
        """Stop the sim thread (closes the env on its own thread) before the node goes."""
        self._worker.stop()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    """`ros2 run libero_sim_bridge bridge [--ros-args -p name:=value ...]`."""
    logging.basicConfig(level=logging.INFO, format="[%(levelname)s] %(name)s: %(message)s")
    rclpy.init(args=args)
    node = LiberoBridgeNode()
    executor = MultiThreadedExecutor(num_threads=2)
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
