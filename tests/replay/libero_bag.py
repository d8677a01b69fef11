"""A small LIBERO-like bag written with the core's BagWriter: what the bridge and the node publish
in a lockstep episode (two cameras, ee pose, fingers, joints, instruction, the commands sent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vla_steer_tools.analysis.bags import BagWriter, make_typestore

INSTRUCTION = "pick up the cream cheese and place it in the basket"
STEP_NS = 50_000_000


def write_libero_bag(path: Path, n: int = 6, size: int = 64, seed: int = 0, instruction: str = INSTRUCTION) -> Path:
    """n steps; step i's messages all carry header stamp i * 50 ms; the reset observation is sent twice."""
    store = make_typestore()
    T = store.types
    Time, Header = T["builtin_interfaces/msg/Time"], T["std_msgs/msg/Header"]
    rng = np.random.default_rng(seed)
    with BagWriter(path, store) as bag:
        for topic, typ in (("/camera/agentview/image_raw", "sensor_msgs/msg/Image"), ("/camera/wrist/image_raw", "sensor_msgs/msg/Image"),
                           ("/ee_pose", "geometry_msgs/msg/PoseStamped"), ("/gripper_state", "sensor_msgs/msg/JointState"),
                           ("/joint_states", "sensor_msgs/msg/JointState"), ("/instruction", "std_msgs/msg/String"),
                           ("/vla/action", "std_msgs/msg/Float64MultiArray")):
            bag.add_topic(topic, typ)
        bag.write("/instruction", 1, store.serialize_cdr(T["std_msgs/msg/String"](data=instruction), "std_msgs/msg/String"))
        for i in range(n):
            t = (i + 1) * STEP_NS
            hdr = Header(stamp=Time(sec=(i * STEP_NS) // 10**9, nanosec=(i * STEP_NS) % 10**9), frame_id="world")
            msgs = []
            for cam in ("agentview", "wrist"):
                img = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
                msgs.append((f"/camera/{cam}/image_raw", "sensor_msgs/msg/Image", T["sensor_msgs/msg/Image"](
                    header=hdr, height=size, width=size, encoding="rgb8", is_bigendian=0, step=size * 3, data=img.reshape(-1))))
            pose = T["geometry_msgs/msg/Pose"](position=T["geometry_msgs/msg/Point"](x=0.0, y=0.01 * i, z=1.0 - 0.01 * i),
                                               orientation=T["geometry_msgs/msg/Quaternion"](x=1.0, y=0.0, z=0.0, w=0.0))
            msgs.append(("/ee_pose", "geometry_msgs/msg/PoseStamped", T["geometry_msgs/msg/PoseStamped"](header=hdr, pose=pose)))
            for topic, k in (("/gripper_state", 2), ("/joint_states", 7)):
                msgs.append((topic, "sensor_msgs/msg/JointState", T["sensor_msgs/msg/JointState"](
                    header=hdr, name=[f"j{j}" for j in range(k)], position=np.full(k, 0.02 + 0.001 * i),
                    velocity=np.zeros(0), effort=np.zeros(0))))
            repeats = 2 if i == 0 else 1
            for r in range(repeats):
                for j, (topic, typ, msg) in enumerate(msgs):
                    bag.write(topic, t + 1000 * r + j, store.serialize_cdr(msg, typ))
            action = T["std_msgs/msg/Float64MultiArray"](layout=T["std_msgs/msg/MultiArrayLayout"](dim=[], data_offset=0),
                                                         data=np.array([0.1, 0.0, -0.2, 0, 0, 0, -1.0]))
            bag.write("/vla/action", t + STEP_NS // 2, store.serialize_cdr(action, "std_msgs/msg/Float64MultiArray"))
    return path
