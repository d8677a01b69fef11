"""The `vla_policy` node: cameras + instruction + joint states in, steered VLA commands out.

A thin adapter wiring params.py, conversions.py, inputs.py (latest inputs + watchdog), safety.py,
commands.py, chunk_runner.py (pacing), steering_control.py and worker.py (the model's thread) to
topics, services and two timers (control at `control_hz`, status at 1 Hz). Model loading starts in
the constructor on the worker thread, so the constructor never blocks; the node reports "loading"
until ready, and `wait_until_ready()` blocks for in-process composition.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from typing import Any, Callable, Sequence

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String
from vla_steer_msgs.msg import ActionChunk, ConceptActivations, SteeringState
from vla_steer_msgs.srv import ListConcepts, SetSteering

from vla_steer_tools.errors import VlaSteerError
from vla_steer_tools.policy import Policy
from vla_steer_tools.steering.hooks import SteeringConfig

from . import conversions as conv
from .chunk_runner import ChunkRunner
from .commands import OUTPUTS, CommandBuilder
from .inputs import LatestInputs
from .params import declare, from_mapping
from .safety import UnsafeCommandError
from .status import diagnostics_msg
from .steering_control import SteeringControl
from .worker import InferenceOutcome, InferenceWorker, load_from_params

LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


class PolicyNode(Node):
    """Runs a steered policy. `policy` skips loading (tests, composition); `params_file` and
    `parameter_overrides` configure it in-process like `--ros-args --params-file/-p` would."""

    def __init__(self, *, policy: Policy | None = None, params_file: str | None = None,
                 parameter_overrides: Sequence[Parameter] = (), node_name: str = "vla_policy", **kwargs) -> None:
        cli_args = ["--ros-args", "--params-file", str(params_file)] if params_file else None
        super().__init__(node_name, cli_args=cli_args, parameter_overrides=list(parameter_overrides), **kwargs)
        self._p = declare(self)
        self._lock = threading.RLock()
        self._steering = SteeringControl(self._p.steering_direction_dirs)
        self._steering_config = self._steering.from_params(self._p)
        self._inputs = LatestInputs(self._p)
        self._builder = CommandBuilder.from_params(self._p)
        self._runner = ChunkRunner(self._p.control_hz, self._p.chunk_execute_steps, self._p.output_lockstep)
        self._hold: list[str] = []
        self._syncing = False
        self._stats = dict(commands=0, rejected_images=0, last_reject="", last_error="", inference_s=math.nan)
        for topic, key in zip(self._p.cameras_topics, self._p.cameras_keys):
            self.create_subscription(Image, topic, self._image_cb(key), qos_profile_sensor_data)
        self.create_subscription(String, "instruction", self._on_instruction, LATCHED)
        for msg_type, name, callback in ((JointState, "joint_states", self._on_joint_states),
                                         (PoseStamped, "ee_pose", self._on_ee_pose),
                                         (JointState, "gripper_state", self._on_gripper)):
            self.create_subscription(msg_type, name, callback, qos_profile_sensor_data)
        topic, msg_type = OUTPUTS[self._p.output_mode]
        self._cmd_pub = self.create_publisher(msg_type, topic, 10)
        self._chunk_pub = self.create_publisher(ActionChunk, "vla/action_chunk", 10)
        self._state_pub = self.create_publisher(SteeringState, "vla/steering_state", LATCHED)
        self._act_pub = self.create_publisher(ConceptActivations, "vla/concept_activations", 10)
        self._diag_pub = self.create_publisher(DiagnosticArray, "diagnostics", 10)
        self.create_service(SetSteering, "~/set_steering", self._on_set_steering)
        self.create_service(ListConcepts, "~/list_concepts", self._on_list_concepts)
        self.add_pre_set_parameters_callback(self._log_bad_parameters)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.create_timer(1.0 / self._p.control_hz, lambda: self._tick(from_timer=True))
        self.create_timer(1.0, self._publish_status)
        self._worker = InferenceWorker(lambda: policy or load_from_params(self._p), self._steering_config,
                                       self._inputs.snapshot, self._on_result, self._on_worker_error, self._on_ready)
        self.get_logger().info(f"loading {self._p.model_family} model from {self._p.model_path!r} "
                               f"(output {self._p.output_mode}, dry_run={self._p.output_dry_run})")
        self._worker.start()

    def wait_until_ready(self, timeout_s: float = 300.0) -> bool:
        """Block until the model is loaded; False on failure or timeout (diagnostics say why)."""
        return self._worker.wait_ready(timeout_s)

    def destroy_node(self) -> None:
        self._worker.stop()
        super().destroy_node()

    def _on_ready(self) -> None:
        adapter = self._worker.policy.adapter
        self.get_logger().info(f"model {adapter.model_id} ready; action space {self._worker.policy.action_space}")
        if adapter.random_weights:
            self.get_logger().warning("model weights are RANDOM (test fixture): its actions are meaningless")
        try:
            self._builder.check_action_space(self._worker.policy.action_space)
        except VlaSteerError as exc:
            self._stats["last_error"] = str(exc)
            self.get_logger().error(f"{exc}: no command will be sent")
        self._publish_status()

    # ------------------------------------------------------------------ inputs
    def _image_cb(self, key: str) -> Callable[[Image], None]:
        expect = (self._p.cameras_height_px, self._p.cameras_width_px)

        def callback(msg: Image) -> None:
            try:
                rgb = conv.image_to_rgb(msg, expect)
            except VlaSteerError as exc:
                self._stats["rejected_images"] += 1
                self._stats["last_reject"] = f"{key}: {exc}"
                self.get_logger().warning(f"rejected image from camera {key!r}: {exc}", throttle_duration_sec=1.0)
                return
            self._inputs.set_image(key, rgb, msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec, time.monotonic())
            if self._p.output_lockstep:
                self._tick()
        return callback

    def _on_instruction(self, msg: String) -> None:
        if not msg.data.strip():
            self.get_logger().warning("rejected an empty instruction")
        elif self._inputs.set_instruction(msg.data, time.monotonic()):
            self.get_logger().info(f"instruction: {msg.data!r}")

    def _on_joint_states(self, msg: JointState) -> None:
        missing = self._inputs.set_joints(msg.name, msg.position, time.monotonic())
        if missing:
            self.get_logger().warning(f"joint_states lacks joints {missing}", throttle_duration_sec=1.0)

    def _on_gripper(self, msg: JointState) -> None:
        self._inputs.set_gripper(msg.position, time.monotonic())

    def _on_ee_pose(self, msg: PoseStamped) -> None:
        p, q = msg.pose.position, msg.pose.orientation
        self._inputs.set_ee_pose((p.x, p.y, p.z), (q.x, q.y, q.z, q.w), time.monotonic())

    # ------------------------------------------------------------------ control loop
    def _tick(self, from_timer: bool = False) -> None:
        """Hold on stale inputs, send the next chunk step when due, ask for inferences."""
        with self._lock:
            now = time.monotonic()
            if self._update_hold(now):
                return
            if self._runner.due(now, from_timer, self._inputs.all_fresh()):
                self._send_step(now)
            if self._runner.wants_inference(now, self._inputs.all_fresh(), self._stats["inference_s"]):
                self._worker.request()

    def _send_step(self, now: float) -> None:
        outcome = self._runner.current
        action = self._runner.take(now)  # (action_dim,)
        self._inputs.consume_fresh()
        try:
            msg = self._builder.build(action, outcome.result.chunk.action_space, self._inputs.robot,
                                      self.get_clock().now().to_msg())
        except (UnsafeCommandError, VlaSteerError) as exc:
            self._stats["last_error"] = f"command refused: {exc}"
            self.get_logger().error(f"command refused: {exc}", throttle_duration_sec=1.0)
            return
        self._stats["obs_to_command_s"] = now - outcome.snapshot_time_s
        if not self._p.output_dry_run:
            self._cmd_pub.publish(msg)
            self._stats["commands"] += 1

    def _update_hold(self, now: float) -> bool:
        reasons = self._inputs.watchdog.stale(now)
        if reasons and not self._hold:
            self.get_logger().warning(f"holding: {'; '.join(reasons)}")
            self._runner.clear()
            self._inputs.robot.last_joint_command = None
            hold = self._builder.hold(self._inputs.robot, self.get_clock().now().to_msg())
            if hold is not None and not self._p.output_dry_run:
                self._cmd_pub.publish(hold)
        elif not reasons and self._hold:
            self.get_logger().info("inputs fresh again: resuming")
        changed = bool(reasons) != bool(self._hold)
        self._hold = reasons
        if changed:
            self._publish_diagnostics()
        return bool(reasons)

    def _on_result(self, outcome: InferenceOutcome) -> None:
        """Worker thread: publish the chunk and activations, then let the control loop use it."""
        stamp = self.get_clock().now().to_msg()
        result = outcome.result
        msg = conv.action_chunk_msg(result.chunk, result.index, stamp)
        msg.inference_time = outcome.latency_s  # the whole policy call, preprocessing included
        self._chunk_pub.publish(msg)
        self._act_pub.publish(conv.concept_activations_msg(result.activations, result.index, stamp))
        with self._lock:
            self._stats["inference_s"] = outcome.latency_s
            if self._hold:
                return
            self._runner.new_chunk(outcome)
        self._tick()

    def _on_worker_error(self, message: str) -> None:
        self._stats["last_error"] = message
        self.get_logger().error(message, throttle_duration_sec=1.0)
        self._publish_diagnostics()

    # ------------------------------------------------------------------ steering
    def _on_set_steering(self, request: SetSteering.Request, response: SetSteering.Response) -> SetSteering.Response:
        try:
            change, since = self._steering.set_steering(self._worker.policy, request.concepts, request.enabled, self._p,
                                                        self._worker.state)
        except VlaSteerError as exc:
            self.get_logger().warning(f"set_steering rejected: {exc}")
            response.success, response.message = False, str(exc)
        else:
            self._steering_config = change.config
            self._write_back_steering(change.params)
            self.get_logger().info(f"steering {'on' if change.config.enabled else 'off'}: "
                                   f"{[(d.name, d.mode, d.alpha) for d in change.config.directions]} "
                                   f"(from inference {since})")
            self._state_pub.publish(self._steering_state())
            response.success, response.message = True, f"applies from inference {since}"
        response.state = self._steering_state()
        return response

    def _write_back_steering(self, values: dict[str, Any]) -> None:
        """Keep `ros2 param get` truthful: write every steering.* value the service changed.

        `values` were validated by `from_request`; `_syncing` stops `_on_set_parameters` from
        applying them a second time."""
        self._syncing = True
        try:
            results = self.set_parameters([
                Parameter(name, Parameter.Type.STRING_ARRAY, value) if isinstance(value, list)
                else Parameter(name, value=value) for name, value in values.items()])
        finally:
            self._syncing = False
        for name, result in zip(values, results):
            if not result.successful:
                self.get_logger().error(f"steering parameter {name} not written back: {result.reason}")

    def _on_list_concepts(self, _request: ListConcepts.Request, response: ListConcepts.Response) -> Any:
        response.names, response.descriptions, response.neuron_counts = self._steering.listing()
        return response

    def _apply_steering(self, config: SteeringConfig) -> None:
        """Validate against the model and queue for the next inference (DirectionError if unfit)."""
        self._worker.update_steering(config)
        self._steering_config = config
        self.get_logger().info(f"steering {'on' if config.enabled else 'off'}: "
                               f"{[(d.name, d.mode, d.alpha) for d in config.directions]} (next inference)")
        self._state_pub.publish(self._steering_state())

    def _steering_state(self) -> SteeringState:
        """What steers now: the policy's config and the exact first inference that runs with it."""
        policy = self._worker.policy
        status = policy.status() if policy else None
        return conv.steering_state_msg(
            status.config if status else self._steering_config,
            model_id=policy.adapter.model_id if policy else self._p.model_path,
            random_weights=bool(policy and policy.adapter.random_weights),
            inference_count=status.since if status else 0, stamp=self.get_clock().now().to_msg())

    # ------------------------------------------------------------------ parameters
    def _log_bad_parameters(self, params: list[Parameter]) -> list[Parameter]:
        """Log type errors, which rclpy refuses before `_on_set_parameters` sees (and logs) them."""
        for p in params:
            if self.has_parameter(p.name) and p.type_.value != self.describe_parameter(p.name).type:
                self.get_logger().warning(f"rejected parameter {p.name}: wrong type {p.type_.name}")
        return params

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        try:
            new = from_mapping({p.name: p.value for p in params}, base=self._p)
            if not self._syncing and any(p.name.startswith("steering.") for p in params):
                self._apply_steering(self._steering.from_params(new))
        except VlaSteerError as exc:
            self.get_logger().warning(f"rejected parameters {[p.name for p in params]}: {exc}")
            return SetParametersResult(successful=False, reason=str(exc))
        with self._lock:
            self._p = new
            self._inputs.reconfigure(new)
            self._builder = CommandBuilder.from_params(new)
            self._runner.configure(new.control_hz, new.chunk_execute_steps, new.output_lockstep)
        return SetParametersResult(successful=True)

    def _publish_status(self) -> None:
        self._state_pub.publish(self._steering_state())
        self._publish_diagnostics()

    def _publish_diagnostics(self) -> None:
        policy = self._worker.policy
        ages = self._inputs.watchdog.ages(time.monotonic())
        values = {"dry_run": self._p.output_dry_run, "random_weights": bool(policy and policy.adapter.random_weights),
                  "inferences": policy.inference_count if policy else 0, **self._stats,
                  **{f"age_s {k}": f"{v:.3f}" for k, v in ages.items()}}
        self._diag_pub.publish(diagnostics_msg(self._worker.state, self._hold, values, self._p.model_path,
                                               self.get_clock().now().to_msg()))


def main(args: Sequence[str] | None = None) -> None:
    """`ros2 run vla_policy policy_node --ros-args --params-file config/policy_libero.yaml`."""
    rclpy.init(args=args if args is not None else sys.argv)
    node = PolicyNode()
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
