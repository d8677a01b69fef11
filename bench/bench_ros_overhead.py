"""ROS overhead of the policy node: camera-to-command latency minus model time.

A driver process publishes one observation at a time (2 cameras x 224x224 rgb8 + joint_states,
ee_pose and gripper_state, as the LIBERO bridge sends) and waits for the command on `vla/action`;
the node runs in its own process (lockstep: each observation triggers one inference, one command). For every frame:
    overhead = (command received - first image published) - policy call time (from vla/action_chunk)
which covers DDS transport both ways, image validation/conversion, the hand-over to the inference
thread, chunk/activation publishing and command building. Target: median <= 5 ms.

    tools/env.sh python bench/bench_ros_overhead.py                # stub + tiny model, 40 frames each
    tools/env.sh python bench/bench_ros_overhead.py --frames 200 --size 448 --models tiny
    tools/env.sh python bench/bench_ros_overhead.py --models stub --executors single multi

`stub` is a constant policy (model time ~0, isolates the ROS side); `tiny` is the tiny
RANDOM-WEIGHT OpenVLA fixture in the official format (real preprocessing and decoding).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _stub_policy():
    """A constant ee_delta_7d policy with a one-layer adapter, so steering hooks attach."""
    import torch
    from torch import nn

    from vla_steer_tools.models.base import ModelAdapter
    from vla_steer_tools.policy import Policy
    from vla_steer_tools.types import ActionChunk

    class StubPolicy(Policy):
        action_space = "ee_delta_7d"

        def __init__(self) -> None:
            self._down = nn.Linear(8, 4)
            self._adapter = ModelAdapter("stub (RANDOM WEIGHTS)", {"backbone": [self._down]},
                                         token_matrix=lambda: torch.zeros(16, 4), decode_token=str,
                                         random_weights=True)

        @property
        def adapter(self):
            return self._adapter

        def infer(self, observation):
            return ActionChunk(np.zeros((1, 7), np.float32), self.action_space, model_id="stub")

    return StubPolicy()


def run_node(model: str, checkpoint: str, size: int, executor_kind: str, ready: mp.Event, stop: mp.Event) -> None:
    """Child process: the policy node until `stop`, on a single-threaded executor (what `main()`
    uses) or a 2-thread MultiThreadedExecutor (what an in-process composition may use)."""
    import rclpy
    from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor
    from rclpy.parameter import Parameter

    from vla_policy.policy_node import PolicyNode

    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    node = PolicyNode(
        context=ctx, policy=_stub_policy() if model == "stub" else None,
        params_file=str(ROOT / "config/policy_libero.yaml"),
        parameter_overrides=[Parameter("model.path", value=checkpoint), Parameter("control_hz", value=100.0),
                             Parameter("cameras.width_px", value=size), Parameter("cameras.height_px", value=size),
                             Parameter("steering.direction_dirs", value=[str(ROOT / "config/directions")])])
    if executor_kind == "multi":
        executor = MultiThreadedExecutor(num_threads=2, context=ctx)
    else:
        executor = SingleThreadedExecutor(context=ctx)
    executor.add_node(node)
    spin = threading.Thread(target=executor.spin, daemon=True)
    spin.start()
    node.wait_until_ready(120.0)
    ready.set()
    stop.wait()
    executor.shutdown(timeout_sec=2.0)
    node.destroy_node()
    ctx.try_shutdown()


def measure(model: str, checkpoint: str, frames: int, size: int, executor_kind: str) -> np.ndarray:
    """Per-frame (latency_s, policy_s) pairs, (frames, 2)."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from geometry_msgs.msg import PoseStamped
    from sensor_msgs.msg import Image, JointState
    from std_msgs.msg import Float64MultiArray, String
    from tqdm import tqdm
    from vla_steer_msgs.msg import ActionChunk

    from vla_policy.conversions import rgb_to_image

    spawn = mp.get_context("spawn")
    ready, stop = spawn.Event(), spawn.Event()
    child = spawn.Process(target=run_node, args=(model, checkpoint, size, executor_kind, ready, stop), daemon=True)
    child.start()
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    node = Node("bench_driver", context=ctx)
    rng = np.random.default_rng(0)
    images = {k: rgb_to_image(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)) for k in ("agentview", "wrist")}
    cams = {k: node.create_publisher(Image, f"camera/{k}/image_raw", qos_profile_sensor_data) for k in images}
    joints = node.create_publisher(JointState, "joint_states", 10)
    gripper = node.create_publisher(JointState, "gripper_state", 10)
    ee_pub = node.create_publisher(PoseStamped, "ee_pose", 10)
    pose = PoseStamped()
    pose.pose.orientation.w = 1.0
    latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    node.create_publisher(String, "instruction", latched).publish(String(data="pick up the bowl"))
    got_cmd, got_chunk = threading.Event(), threading.Event()
    stamps: dict[str, float] = {}
    chunk_time: list[float] = []

    def on_cmd(msg) -> None:
        stamps["cmd"] = time.perf_counter()
        got_cmd.set()

    def on_chunk(msg) -> None:
        chunk_time.append(msg.inference_time)
        got_chunk.set()

    node.create_subscription(Float64MultiArray, "vla/action", on_cmd, 10)
    node.create_subscription(ActionChunk, "vla/action_chunk", on_chunk, 10)
    executor = SingleThreadedExecutor(context=ctx)
    executor.add_node(node)
    threading.Thread(target=executor.spin, daemon=True).start()
    try:
        if not ready.wait(180.0):
            raise RuntimeError("policy node did not become ready in 180 s")
        deadline = time.monotonic() + 30.0
        while not (all(p.get_subscription_count() for p in cams.values())
                   and node.count_publishers("vla/action") and node.count_publishers("vla/action_chunk")):
            if time.monotonic() > deadline:
                raise RuntimeError("driver and policy node did not discover each other in 30 s")
            time.sleep(0.05)
        out, lost = [], 0
        for i in tqdm(range(-3, frames), desc=f"{model}/{executor_kind} frames", leave=False):  # 3 warm-up
            for _attempt in range(5):  # best-effort images can be dropped: resend, count it
                got_cmd.clear()
                got_chunk.clear()
                chunk_time.clear()
                t0 = time.perf_counter()
                for key, pub in cams.items():
                    pub.publish(images[key])
                joints.publish(JointState(name=["j1"], position=[0.0]))
                gripper.publish(JointState(name=["f1", "f2"], position=[0.04, -0.04]))
                ee_pub.publish(pose)
                if got_cmd.wait(5.0) and got_chunk.wait(5.0):
                    break
                lost += i >= 0
            else:
                raise RuntimeError(f"no command for frame {i} after 5 attempts")
            if i >= 0:
                out.append((stamps["cmd"] - t0, chunk_time[-1]))
            time.sleep(0.05)
        if lost:
            print(f"  ({model}/{executor_kind}: {lost} observation(s) lost in transport and resent)")
        return np.asarray(out)
    finally:
        stop.set()
        child.join(timeout=15.0)
        executor.shutdown(timeout_sec=2.0)
        node.destroy_node()
        ctx.try_shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=40, help="measured frames per model (default 40)")
    parser.add_argument("--size", type=int, default=224, help="square image size, px (default 224)")
    parser.add_argument("--models", nargs="+", choices=("stub", "tiny"), default=["stub", "tiny"])
    parser.add_argument("--executors", nargs="+", choices=("single", "multi"), default=["single"],
                        help="node executor(s): single (rclpy.spin, default) and/or multi (2 threads)")
    args = parser.parse_args()
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("ROS_LOG_DIR", tempfile.mkdtemp(prefix="bench_ros_log_"))
    from vla_steer_tools.fixtures.tiny_checkpoints import ensure_tiny_checkpoint

    checkpoint = str(ensure_tiny_checkpoint("openvla", ROOT / ".state/checkpoints"))
    print(f"ROS overhead of vla_policy: 2 cameras x {args.size}x{args.size} rgb8, {args.frames} frames, "
          f"lockstep, separate processes, Fast DDS localhost ({os.cpu_count()} CPUs)")
    print("  (models run on RANDOM WEIGHTS: 'stub' = constant policy, 'tiny' = tiny OpenVLA fixture)")
    print(f"{'model':6} {'executor':8} {'latency ms (median/p90)':>24} {'policy ms (median)':>19} "
          f"{'overhead ms (median/p90)':>25} {'overhead/latency':>17}")
    for model in args.models:
        for kind in args.executors:
            data = measure(model, checkpoint, args.frames, args.size, kind)
            latency, policy = data[:, 0] * 1e3, data[:, 1] * 1e3
            overhead = latency - policy
            print(f"{model:6} {kind:8} {np.median(latency):12.2f} / {np.percentile(latency, 90):8.2f} "
                  f"{np.median(policy):19.2f} {np.median(overhead):12.2f} / {np.percentile(overhead, 90):8.2f} "
                  f"{np.median(overhead) / np.median(latency):17.2f}")
    print("target: median overhead <= 5 ms")


if __name__ == "__main__":
    main()
