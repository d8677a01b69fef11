"""The `vla_policy` node: cameras + instruction + joint states in, steered VLA commands out.

A managed (lifecycle) node, the ROS 2 convention for drivers and controllers:
- unconfigured: inputs are received and parameters can be set; nothing is loaded or commanded;
- `configure` loads the direction library and the model and checks that the model's action space
  fits `output.mode`; any failure fails the transition with the reason (log + diagnostics) and
  the node stays unconfigured;
- `activate` starts commanding; `deactivate` sends one hold and stops; `cleanup` frees the model;
  `shutdown` holds (when active) and frees it.
With `autostart` (true in config/policy_libero.yaml) `autostart()` drives configure + activate at
start and a failure ends the process non-zero (`main`), so launch / systemd can see it.

The rest is a thin adapter wiring params.py, conversions.py, inputs.py (latest inputs + watchdog),
commands.py (limits + the final gate), chunk_runner.py (pacing), steering_control.py and worker.py
(the model's thread) to topics, services and two timers (control at `control_hz`, status at 1 Hz).
Every outgoing command, holds included, is built by CommandBuilder and so passes the gate; a
command from an observation older than `watchdog.max_observation_age_s` is never sent; a failed
inference holds at once. The clock (`clock=`, monotonic seconds) is injectable for tests.
"""

from __future__ import annotations

import gc
import logging
import math
import os
import signal
import sys
import threading
import time
from typing import Any, Callable, NoReturn, Sequence

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import SetParametersResult
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String
from vla_steer_msgs.msg import ActionChunk, ConceptActivations, SteeringState
from vla_steer_msgs.srv import ListConcepts, SetSteering

from vla_steer_tools.errors import VlaSteerError
from vla_steer_tools.policy import Policy, SteeredPolicy
from vla_steer_tools.steering.hooks import SteeringConfig, resolve_position

from . import conversions as conv
from .chunk_runner import ChunkRunner
from .commands import OUTPUTS, CommandBuilder, tool_pose_msg
from .echo import Throttle, clip, shorten
from .inputs import LatestInputs
from .params import declare, from_mapping
from .safety import UnsafeCommandError
from .status import Health, assess, diagnostics_msg
from .steering_control import SteeringControl
from .worker import InferenceOutcome, InferenceWorker, load_from_params

LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE


class AutostartError(VlaSteerError):
    """`autostart` could not configure or activate the node (the message says why)."""


class PolicyNode(LifecycleNode):
    """Runs a steered policy. `policy` skips loading (tests, composition: configure wraps it);
    `params_file` and `parameter_overrides` configure it in-process like `--ros-args
    --params-file/-p` would; `clock` replaces time.monotonic (tests)."""

    def __init__(self, *, policy: Policy | None = None, params_file: str | None = None,
                 parameter_overrides: Sequence[Parameter] = (), node_name: str = "vla_policy",
                 clock: Callable[[], float] = time.monotonic, **kwargs) -> None:
        cli_args = ["--ros-args", "--params-file", str(params_file)] if params_file else None
        super().__init__(node_name, cli_args=cli_args, parameter_overrides=list(parameter_overrides), **kwargs)
        self._now = clock
        self._given_policy = policy
        self._p = declare(self)
        self._lock = threading.RLock()
        self._steering: SteeringControl | None = None  # the direction library, loaded by configure
        self._steering_session: dict = {}  # explicit-neuron concepts from set_steering, kept across cleanup
        self._steering_config = SteeringConfig()
        self._policy: SteeredPolicy | None = None
        self._worker: InferenceWorker | None = None
        self._active = False
        self._closed = False
        self._config_error = ""
        self._health = Health()
        self._inputs = LatestInputs(self._p)
        self._builder = CommandBuilder.from_params(self._p)
        self._runner = ChunkRunner(self._p.control_hz, self._p.chunk_execute_steps, self._p.output_lockstep)
        self._hold: list[str] = []
        self._syncing = False
        self._throttles = {name: Throttle(1.0) for name in ("instruction", "instruction_rejected", "input", "inference", "refused")}
        self._stats = dict(commands=0, holds_sent=0, rejected_images=0, last_reject="", last_error="",
                           inference_s=math.nan)
        self._create_interfaces()
        self.get_logger().info(f"{self._p.model_family} model {self._p.model_path!r}, output {self._p.output_mode} "
                               f"(dry_run={self._p.output_dry_run}); unconfigured"
                               + (" (autostart)" if self._p.autostart else ": waiting for `configure`"))

    def _create_interfaces(self) -> None:
        for topic, key in zip(self._p.cameras_topics, self._p.cameras_keys):
            self.create_subscription(Image, topic, self._image_cb(key), qos_profile_sensor_data)
        self.create_subscription(String, "instruction", self._on_instruction, LATCHED)
        inputs = [(JointState, "joint_states", self._on_joint_states), (JointState, "gripper_state", self._on_gripper)]
        if self._builder.kinematics is None:  # else the node computes ee_pose itself (and publishes it)
            inputs.append((PoseStamped, "ee_pose", self._on_ee_pose))
        for msg_type, name, callback in inputs:
            self.create_subscription(msg_type, name, callback, qos_profile_sensor_data)
        self._ee_pose_pub = (self.create_publisher(PoseStamped, "ee_pose", 10)  # reliable: matches any subscriber
                             if self._builder.kinematics is not None else None)
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

    # ------------------------------------------------------------------ lifecycle
    @property
    def lifecycle_state(self) -> str:
        """'unconfigured', 'inactive', 'active', 'finalized' or a transition state."""
        return self._state_machine.current_state[1]

    def autostart(self) -> None:
        """With `autostart`: configure and activate now (blocking while the model loads);
        AutostartError with the reason when either fails. Without it: nothing."""
        if not self._p.autostart:
            return
        if self.trigger_configure() != SUCCESS:
            raise AutostartError(f"configure failed: {self._config_error or 'see the log'}")
        if self.trigger_activate() != SUCCESS:
            raise AutostartError("activate failed (see the log)")

    def wait_until_ready(self, timeout_s: float = 300.0) -> bool:
        """Compatibility for in-process users: autostart if set; True when the node is active."""
        del timeout_s  # configure is synchronous: there is nothing to wait for
        try:
            self.autostart()
        except AutostartError:
            return False
        return self.lifecycle_state == "active"

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load the direction library and the model; FAILURE (node stays unconfigured) if either fails."""
        try:
            self._load()
        except Exception as exc:  # noqa: BLE001 - any load failure must fail the transition, with its reason
            self._release()
            self._config_error = f"{type(exc).__name__}: {shorten(exc, 1000)}"
            self.get_logger().error(f"configure failed: {self._config_error}")
            self._publish_diagnostics()
            return FAILURE
        self._config_error = ""
        self._publish_status()
        return SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        with self._lock:
            self._runner.clear()
            self._hold, self._health = [], Health()
            self._active = True
        self.get_logger().info("active: commanding" + (" (dry run: chunks only)" if self._p.output_dry_run else ""))
        self._publish_diagnostics()
        return SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        with self._lock:
            self._send_hold()
            self._active = False
            self._runner.clear()
        self.get_logger().info("inactive: holding, not commanding")
        self._publish_diagnostics()
        return SUCCESS

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self.get_logger().info("unconfigured: model freed")
        self._publish_diagnostics()
        return SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        with self._lock:
            if self._active:
                self._send_hold()
            self._active = False
        self._release()
        return SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        with self._lock:
            self._active = False
        self._release()
        return SUCCESS

    def _load(self) -> None:
        p = self._p
        steering = SteeringControl(p.steering_direction_dirs, session=self._steering_session)
        config = steering.from_params(p)
        self.get_logger().info(f"configuring: loading {p.model_family} model from {p.model_path!r}")
        t0 = time.monotonic()
        policy = SteeredPolicy(self._given_policy or load_from_params(p), config)  # validates the directions
        try:
            self._builder.check_action_space(policy.action_space)
        except VlaSteerError:
            policy.close()
            raise
        with self._lock:
            self._steering, self._steering_config, self._policy = steering, config, policy
            self._worker = InferenceWorker(policy, self._inputs.snapshot, self._on_result, self._on_worker_error,
                                           clock=self._now)
            self._worker.start()
        adapter = policy.adapter
        self.get_logger().info(f"inactive: model {adapter.model_id} loaded in {time.monotonic() - t0:.1f} s; "
                               f"action space {policy.action_space}")
        if adapter.random_weights:
            self.get_logger().warning("model weights are RANDOM (test fixture): its actions are meaningless")

    def _release(self) -> None:
        """Stop the worker (before anything it publishes on goes away) and free the model."""
        with self._lock:
            worker, policy = self._worker, self._policy
            self._worker, self._policy, self._steering = None, None, None
            self._runner.clear()
        if worker is not None and not worker.stop():
            self.get_logger().warning("the inference thread is still running a model call; its result is dropped")
        if policy is not None:
            policy.close()
            del policy
            gc.collect()
            _free_accelerator_memory()

    def close(self) -> None:
        """Stop the worker and every publish from it; call before the context shuts down."""
        with self._lock:
            self._closed = True
            self._active = False
        self._release()

    def destroy_node(self) -> None:
        self.close()
        super().destroy_node()

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
            self._inputs.set_image(key, rgb, msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec, self._now())
            if self._p.output_lockstep:
                self._tick()
        return callback

    def _on_instruction(self, msg: String) -> None:
        changed = msg.data != self._inputs.instruction
        reason = self._inputs.set_instruction(msg.data, self._now())
        if reason:
            self._stats["last_reject"] = f"instruction: {reason}"
            self._log_input("instruction_rejected", f"{reason}: {clip(msg.data)}; holding until a valid instruction")
            self._tick()
        elif changed:
            self._log_input("instruction", f"instruction: {clip(msg.data)}", warn=False)

    def _log_input(self, throttle: str, text: str, warn: bool = True) -> None:
        """A log line about user input: truncated by the caller, throttled here (1 per second)."""
        gate = self._throttles[throttle]
        if not gate.ready(self._now()):
            return
        if warn:  # one call site per severity: rclpy refuses a severity change at the same line
            self.get_logger().warning(text + gate.note())
        else:
            self.get_logger().info(text + gate.note())

    def _input_rejected(self, reason: str) -> None:
        if reason:
            self._stats["last_reject"] = shorten(reason, 200)
            self._log_input("input", f"rejected: {shorten(reason, 200)}")

    def _on_joint_states(self, msg: JointState) -> None:
        now = self._now()
        reason = self._inputs.set_joints(msg.name, msg.position, now)
        self._input_rejected(reason)
        if not reason and self._ee_pose_pub is not None:
            self._publish_tool_pose(msg, now)
        if not reason:
            self._lockstep_tick()

    def _publish_tool_pose(self, msg: JointState, now: float) -> None:
        """With robot.model: tool0 in base_link by FK, stored as the ee pose and published on ee_pose."""
        with self._lock:  # the kinematics' pinocchio Data is shared with the control loop
            if self._closed:
                return
            try:
                pose = self._builder.tool_pose(list(msg.name), msg.position)
            except VlaSteerError as exc:
                self._input_rejected(f"no tool pose from joint_states: {exc}")
                return
            self._input_rejected(self._inputs.set_ee_pose(pose.position_m, pose.quaternion_xyzw, now))
            self._ee_pose_pub.publish(tool_pose_msg(pose, msg.header.stamp))

    def _on_gripper(self, msg: JointState) -> None:
        self._input_rejected(self._inputs.set_gripper(msg.position, self._now()))
        self._lockstep_tick()

    def _on_ee_pose(self, msg: PoseStamped) -> None:
        p, q = msg.pose.position, msg.pose.orientation
        self._input_rejected(self._inputs.set_ee_pose((p.x, p.y, p.z), (q.x, q.y, q.z, q.w), self._now()))
        self._lockstep_tick()

    def _lockstep_tick(self) -> None:
        """In lockstep a state message may be the last piece of a step's observation to arrive."""
        if self._p.output_lockstep:
            self._tick()

    # ------------------------------------------------------------------ control loop
    def _tick(self, from_timer: bool = False) -> None:
        """Hold on stale inputs, send the next chunk step when due, ask for inferences."""
        with self._lock:
            if not self._active or self._worker is None:
                return
            now = self._now()
            if self._update_hold(now):
                return
            fresh = self._inputs.all_fresh()
            if self._runner.due(now, from_timer, fresh):
                self._send_step(now)
            if self._runner.wants_inference(now, self._inputs.all_fresh(), self._stats["inference_s"]):
                self._worker.request()

    def _send_step(self, now: float) -> None:
        """Send the runner's next step through the gate, unless its observation is too old."""
        age, max_age = self._runner.age_s(now), self._p.watchdog_max_observation_age_s
        if not age <= max_age:
            self._refuse(f"observation {age:.2f} s old (watchdog.max_observation_age_s {max_age:g} s)")
            return
        outcome = self._runner.current
        action = self._runner.take(now)  # (action_dim,)
        self._inputs.consume_fresh()
        try:
            msg = self._builder.build(action, outcome.result.chunk.action_space, self._inputs.robot,
                                      self.get_clock().now().to_msg())
        except (UnsafeCommandError, VlaSteerError) as exc:
            self._refuse(str(exc))
            return
        self._health.command_sent()
        self._stats["obs_to_command_s"] = round(age, 4)
        if self._p.output_dry_run:
            # Nothing went out, so the arm did not follow: the next rate-limit reference stays the
            # measured joints. Keeping the unsent command made the reference drift away from the
            # arm, and the first live command after dry_run -> false jumped by the drift.
            self._inputs.robot.last_joint_command = None
            return
        self._cmd_pub.publish(msg)
        self._stats["commands"] += 1

    def _refuse(self, reason: str) -> None:
        """Nothing of this chunk is sent: drop it, hold, and say why."""
        self._health.command_refused(reason)
        self._stats["last_error"] = f"command refused: {reason}"
        if self._throttles["refused"].ready(self._now()):
            self.get_logger().error(f"command refused, holding: {reason}" + self._throttles["refused"].note())
        self._runner.clear()
        self._send_hold()
        self._publish_diagnostics()

    def _send_hold(self) -> None:
        """Publish the mode's hold (itself gated) when commanding; nothing where silence holds."""
        if not self._active or self._p.output_dry_run:
            return
        try:
            msg = self._builder.hold(self._inputs.robot, self.get_clock().now().to_msg())
        except UnsafeCommandError as exc:
            self._health.command_refused(f"hold refused: {exc}")
            return
        if msg is not None:
            self._cmd_pub.publish(msg)
            self._stats["holds_sent"] += 1

    def _update_hold(self, now: float) -> bool:
        reasons = self._inputs.stale(now)
        if reasons and not self._hold:
            self.get_logger().warning(f"holding: {shorten('; '.join(reasons), 300)}")
            self._runner.clear()
            self._send_hold()
        elif not reasons and self._hold:
            self.get_logger().info("inputs fresh again: resuming")
        changed = bool(reasons) != bool(self._hold)
        self._hold = reasons
        if changed:
            self._publish_diagnostics()
        return bool(reasons)

    def _on_result(self, outcome: InferenceOutcome) -> None:
        """Worker thread: publish the chunk and activations, then let the control loop use it."""
        result = outcome.result
        with self._lock:
            if self._closed or not self._active:
                return
            stamp = self.get_clock().now().to_msg()
            msg = conv.action_chunk_msg(result.chunk, result.index, stamp)
            msg.inference_time = outcome.latency_s  # the whole policy call, preprocessing included
            self._chunk_pub.publish(msg)
            self._act_pub.publish(conv.concept_activations_msg(result.activations, result.index, stamp))
            self._stats["inference_s"] = outcome.latency_s
            actions = np.asarray(result.chunk.actions)
            if not np.all(np.isfinite(actions)):
                self._inference_failed(f"inference {result.index} gave non-finite actions "
                                       f"({int(np.sum(~np.isfinite(actions)))} of {actions.size} values)", True)
                return
            self._health.inference_ok()
            if not self._hold:
                self._runner.new_chunk(outcome)
        self._tick()

    def _on_worker_error(self, message: str, non_finite: bool = False) -> None:
        with self._lock:
            if self._closed or not self._active:
                return
            self._inference_failed(message, non_finite)

    def _inference_failed(self, reason: str, non_finite: bool = False) -> None:
        """Hold at once (not at the next tick): nothing computed from a failing model goes out."""
        self._health.inference_failed(reason, non_finite)
        self._stats["last_error"] = shorten(reason, 300)
        self._stats["inference_failures"] = self._health.total_failures
        if self._throttles["inference"].ready(self._now()):
            self.get_logger().error(shorten(reason, 300) + self._throttles["inference"].note())
        self._runner.clear()
        self._send_hold()
        self._publish_diagnostics()

    # ------------------------------------------------------------------ steering
    def _on_set_steering(self, request: SetSteering.Request, response: SetSteering.Response) -> SetSteering.Response:
        if self._steering is None:
            response.success = False
            response.message = (f"node is {self.lifecycle_state}: configure it first (the model and the direction "
                                "library load then); `vla-steer lifecycle set /vla_policy configure`")
            response.state = self._steering_state()
            return response
        try:
            change, since = self._steering.set_steering(self._policy, request.concepts, request.enabled, self._p,
                                                        self.lifecycle_state)
        except VlaSteerError as exc:
            self.get_logger().warning(f"set_steering rejected: {shorten(exc, 300)}")
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
        library = self._steering or SteeringControl(self._p.steering_direction_dirs, session=self._steering_session)
        response.names, response.descriptions, response.neuron_counts = library.listing()
        return response

    def _apply_steering(self, config: SteeringConfig) -> None:
        """Validate against the model (when configured) and queue for the next inference."""
        if self._policy is not None:
            self._policy.update(config)  # DirectionError if it does not fit the model
        self._steering_config = config
        self.get_logger().info(f"steering {'on' if config.enabled else 'off'}: "
                               f"{[(d.name, d.mode, d.alpha) for d in config.directions]} (next inference)")
        self._state_pub.publish(self._steering_state())

    def _steering_state(self) -> SteeringState:
        """What steers now: the policy's config and the exact first inference that runs with it."""
        policy = self._policy
        status = policy.status() if policy else None
        config = status.config if status else self._steering_config
        return conv.steering_state_msg(
            config,
            model_id=policy.adapter.model_id if policy else self._p.model_path,
            random_weights=bool(policy and policy.adapter.random_weights),
            inference_count=status.since if status else 0, stamp=self.get_clock().now().to_msg(),
            position=resolve_position(policy.adapter, config.position) if policy else None)

    # ------------------------------------------------------------------ parameters
    def _log_bad_parameters(self, params: list[Parameter]) -> list[Parameter]:
        """Log type errors, which rclpy refuses before `_on_set_parameters` sees (and logs) them."""
        for p in params:
            if self.has_parameter(p.name) and p.type_.value != self.describe_parameter(p.name).type:
                self.get_logger().warning(f"rejected parameter {shorten(p.name, 80)}: wrong type {p.type_.name}")
        return params

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        try:
            new = from_mapping({p.name: p.value for p in params}, base=self._p)
            if self._steering is not None and not self._syncing and any(p.name.startswith("steering.") for p in params):
                self._apply_steering(self._steering.from_params(new))
        except VlaSteerError as exc:
            self.get_logger().warning(f"rejected parameters {[shorten(p.name, 80) for p in params]}: {shorten(exc, 300)}")
            return SetParametersResult(successful=False, reason=str(exc))
        with self._lock:
            self._p = new
            self._inputs.reconfigure(new)
            self._builder = CommandBuilder.from_params(new)
            self._runner.configure(new.control_hz, new.chunk_execute_steps, new.output_lockstep)
        return SetParametersResult(successful=True)

    # ------------------------------------------------------------------ status
    def _publish_status(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._state_pub.publish(self._steering_state())
            self._publish_diagnostics()

    def _publish_diagnostics(self) -> None:
        with self._lock:
            if self._closed:
                return
            policy = self._policy
            ages = self._inputs.watchdog.ages(self._now())
            values = {"lifecycle": self.lifecycle_state, "dry_run": self._p.output_dry_run,
                      "random_weights": bool(policy and policy.adapter.random_weights),
                      "inferences": policy.inference_count if policy else 0, **self._stats,
                      **{f"age_s {k}": f"{v:.3f}" for k, v in ages.items()}}
            level, message = assess(self.lifecycle_state, self._config_error, self._hold, self._health)
            self._diag_pub.publish(diagnostics_msg(level, message, values, self._p.model_path,
                                                   self.get_clock().now().to_msg()))


def _free_accelerator_memory() -> None:
    """Return cached GPU memory after the model is dropped (cleanup frees the model)."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def _interrupt(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def spin_until_interrupted(node: PolicyNode) -> None:
    """Spin in short slices so SIGINT / SIGTERM reach Python between them (rclpy's own handlers
    are off: they would shut the context down while the worker thread may still publish)."""
    executor = SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    try:
        while node.context.ok():
            executor.spin_once(timeout_sec=0.1)
    finally:
        executor.shutdown(timeout_sec=1.0)


def main(args: Sequence[str] | None = None) -> NoReturn:
    """`ros2 run vla_policy policy_node --ros-args --params-file config/policy_libero.yaml`.

    Exit status: 0 after SIGINT / SIGTERM, 1 when the node cannot start (bad parameters, or an
    autostart whose configure / activate failed). After the orderly shutdown (worker stopped,
    node destroyed, context shut down) the process ends at once with os._exit: the interpreter's
    teardown of torch can take seconds on a busy machine, during which launch / systemd would see
    a process that ignores its SIGINT."""
    rclpy.init(args=args if args is not None else sys.argv, signal_handler_options=SignalHandlerOptions.NO)
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    node: PolicyNode | None = None
    code = 0
    try:
        node = PolicyNode()
        node.autostart()
        spin_until_interrupted(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except VlaSteerError as exc:
        print(f"vla_policy: {exc}", file=sys.stderr, flush=True)
        code = 1
    finally:
        if node is not None:
            node.destroy_node()  # stops the worker first, then the node; the context goes last
        rclpy.try_shutdown()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
