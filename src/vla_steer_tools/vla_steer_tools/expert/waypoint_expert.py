"""A state-feedback pick-and-place expert that emits LIBERO's 7-D delta actions.

Why state feedback rather than a timed script: the action is a function of the *current* privileged
state only (end-effector pose, finger positions and speeds, object and target positions), so the
same expert can label any state a learned policy visits (DAgger-style relabelling) and recovers by
itself from a missed grasp or a dropped object. The phase it is in is recomputed every step:

    approach (above the grasp point, gripper open) -> descend -> close (no motion until the
    fingers stop) -> lift to the carry height -> carry above the target -> lower -> release ->
    retreat upwards.

Two settings shape the motion and are what the instruction adverbs describe:
  * `speed`: the largest commanded position step, in LIBERO's action units (1.0 = the OSC's 5 cm
    target offset); the measured end-effector speed follows it (slow < normal < fast);
  * `carry_height_m`: how high above the table the object is carried between pick and place.
A per-episode grasp jitter (`grasp_jitter_m`, `close_radius_m`) shifts the grasp point and widens
the close condition, so "close the gripper" is demonstrated from near misses too.

A symmetric object has more than one grasp (a bowl's rim on either side). The expert takes the
nominal one unless the hand, placed there, would come close to an obstacle (the state's
`obstacles`, axis-aligned boxes the simulator reports) while another grasp leaves it clearer: in
libero_spatial task 2 the bowl stands 1-2 cm from a cabinet, and a bowl pushed towards it by a
missed grasp left the hand's side pressed against the cabinet, 8 mm short of the rim, for 500 steps.
The choice reads object and obstacle positions only, so it stays a function of the current state.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from ..errors import ConfigError

#: LIBERO gripper command values.
GRIPPER_OPEN, GRIPPER_CLOSE = -1.0, 1.0
#: Finger opening (m, sum of both finger joints) of the Panda gripper fully open / fully shut.
FINGERS_OPEN_M, FINGERS_SHUT_M = 0.078, 0.004
#: Recorded with every demonstration: which revision of the law made it. 2 = continuous lowering
#: once below the carry height (episodes without the key came from revision 1, which differs only
#: where a held object drifted 1.5-3 cm off the target while being lowered).
EXPERT_VERSION = 3  # 3 = the grasp side is chosen clear of obstacles (alt_grasp_offsets_m)
#: The Panda hand and open fingers' collision box relative to the end-effector site (m, world axes,
#: hand pointing down as LIBERO holds it): measured from the union of the geoms' AABBs at a reset.
HAND_BOX_M = ((-0.030, -0.103, -0.013), (0.039, 0.106, 0.126))
#: Below this clearance from an obstacle the nominal grasp gives way to a clearer alternative...
GRASP_CLEARANCE_M = 0.02
#: ...one at least this much clearer (so near-equal grasps never swap back and forth).
GRASP_CLEARANCE_GAIN_M = 0.01
#: OSC scale: one action unit moves the position target this far (robosuite OSC_POSE output_max).
OSC_M_PER_UNIT = 0.05


@dataclass(frozen=True)
class TaskGeometry:
    """Where to grasp one task's object and where to let go of it, relative to their poses.

    grasp_offset_m: grasp point minus the object's body position, world frame (a rim grasp puts
        it off-centre). hover_m: approach height above the grasp point. release_above_target_m:
        height of the hand over the target's body position when the gripper opens (the object's
        body is then centred over the target). min_hold_opening_m: a closed hand with a wider
        opening than this holds the object; narrower means it closed on nothing (a bowl's rim is
        thin: a lifted bowl was measured held at 4.8-6.4 mm against 4.0 mm shut on nothing).
    centre_full_m / centre_none_m: the descent law's sideways tolerance: the hand goes all the
        way down when centred within centre_full_m and not at all beyond centre_none_m. A bowl's
        rim needs millimetres; a box narrower than the open hand tolerates a centimetre, and
        saying so matters for a learned policy: with a millimetre law, a policy that parks 9 mm
        off-centre is told to stay half-way down for ever (the mini-VLA's round-0/1 failures).
    close_xy_m: the hand also closes when this well centred at the grasp height (in addition
        to the per-episode close radius).
    place_full_m / place_none_m: the same law for lowering the held object over the target.
    alt_grasp_offsets_m: other grasp points as good as grasp_offset_m by the object's symmetry
        (a bowl's rim on the other side), taken when the nominal one puts the hand at an obstacle.
    object_rest_z_m: the object's body height when it stands on the table, if known. An object
        well above it, between closed fingers, is held whatever the opening: a bowl's rim slips to
        4.4 mm between the fingers, the opening of a hand shut on nothing (measured, init state 3).
    """

    object_name: str
    target_name: str
    grasp_offset_m: tuple[float, float, float] = (0.0, 0.0, 0.0)
    hover_m: float = 0.08
    release_above_target_m: float = 0.10
    table_z_m: float = 0.0
    min_hold_opening_m: float = 0.01  # finger opening above which a closed hand holds the object
    centre_full_m: float = 0.004
    centre_none_m: float = 0.016
    close_xy_m: float = 0.0
    object_rest_z_m: float | None = None
    place_full_m: float = 0.015
    place_none_m: float = 0.03
    alt_grasp_offsets_m: tuple[tuple[float, float, float], ...] = ()

    @property
    def grasp_offsets(self) -> list[np.ndarray]:
        """The nominal grasp offset first, then the alternatives."""
        return [np.asarray(o, dtype=np.float64) for o in (self.grasp_offset_m, *self.alt_grasp_offsets_m)]


#: Finger opening speed (m/s, both fingers together) beyond which the fingers count as moving.
FINGER_MOVING_M_S = 0.01


@dataclass(frozen=True)
class ExpertSettings:
    """How the expert moves. speed: max position step in action units (0.05 .. 1.0).
    carry_height_m: carry height above the table. grasp_jitter_m: grasp point offset applied this
    episode (3,). close_radius_m: the hand closes when this close to the (jittered) grasp point."""

    speed: float = 0.6
    carry_height_m: float = 0.20
    grasp_jitter_m: tuple[float, float, float] = (0.0, 0.0, 0.0)
    close_radius_m: float = 0.006

    def __post_init__(self) -> None:
        if not 0.05 <= self.speed <= 1.0:
            raise ConfigError(f"expert speed {self.speed} out of range 0.05..1.0 (action units)")
        if not 0.03 <= self.carry_height_m <= 0.5:
            raise ConfigError(f"carry height {self.carry_height_m} m out of range 0.03..0.5")
        if not 0.001 <= self.close_radius_m <= 0.05:
            raise ConfigError(f"close radius {self.close_radius_m} m out of range 0.001..0.05")
        if len(self.grasp_jitter_m) != 3 or not np.all(np.isfinite(self.grasp_jitter_m)):
            raise ConfigError(f"grasp jitter must be 3 finite values, got {self.grasp_jitter_m}")


@dataclass(frozen=True)
class ExpertState:
    """The privileged state the expert reads (world frame, metres; quaternions x y z w)."""

    ee_pos: np.ndarray
    ee_quat: np.ndarray
    fingers: np.ndarray  # (2,) finger joint positions
    finger_vel: np.ndarray  # (2,)
    object_pos: np.ndarray
    target_pos: np.ndarray
    #: (N, 2, 3) world AABBs (min corner, max corner) of what the hand must not touch, or None
    obstacles: np.ndarray | None = None

    @property
    def opening_m(self) -> float:
        return float(self.fingers[0] - self.fingers[1])

    @property
    def opening_rate_m_s(self) -> float:
        """> 0: the fingers are opening; < 0: closing."""
        return float(self.finger_vel[0] - self.finger_vel[1])


@dataclass(frozen=True)
class ExpertAction:
    action: np.ndarray  # (7,) dx dy dz droll dpitch dyaw gripper, LIBERO units
    phase: str


#: Reference hand orientation: pointing down, as LIBERO resets the arm (x y z w).
DOWN_QUAT = np.array([1.0, 0.0, 0.0, 0.0])


class WaypointExpert:
    """`act(state)` -> the expert's action for that state (see the module docstring)."""

    #: Position gain: action units per metre of error (saturates at `speed`).
    gain_per_m = 25.0
    rot_gain = 2.0
    max_rot = 0.3

    def __init__(self, geometry: TaskGeometry, settings: ExpertSettings = ExpertSettings()) -> None:
        self.geometry = geometry
        self.settings = settings

    # -- the policy --------------------------------------------------------------------------
    def act(self, s: ExpertState) -> ExpertAction:
        g = self.geometry
        grasp = np.asarray(s.object_pos) + self.grasp_offset(s) + np.asarray(self.settings.grasp_jitter_m)
        carry_z = g.table_z_m + self.settings.carry_height_m
        if self._in_hand(s):
            if np.max(np.abs(s.finger_vel)) > 0.01 and s.ee_pos[2] < grasp[2] + 0.02:
                return self._out(s, s.ee_pos, GRIPPER_CLOSE, "close")  # fingers still closing
            return self._carry(s, carry_z)
        if s.opening_m < FINGERS_OPEN_M - 0.01:
            near = np.linalg.norm(s.ee_pos - grasp) < 2.5 * self.settings.close_radius_m + 0.01
            closing = s.opening_rate_m_s < -FINGER_MOVING_M_S
            if near and s.opening_m > FINGERS_SHUT_M and closing:
                return self._out(s, s.ee_pos, GRIPPER_CLOSE, "close")
            if self._object_placed(s):
                return self._out(s, s.ee_pos + [0, 0, 0.1], GRIPPER_OPEN, "retreat")
            # closed on nothing (or let go in the wrong place): open, and back up a little — never
            # above the hover height, or a hand that takes many steps to open climbs away
            up = min(s.ee_pos[2] + 0.03, max(s.ee_pos[2], grasp[2] + self.geometry.hover_m))
            return self._out(s, np.array([s.ee_pos[0], s.ee_pos[1], up]), GRIPPER_OPEN, "reopen")
        if self._object_placed(s):
            return self._out(s, s.ee_pos + [0, 0, 0.1], GRIPPER_OPEN, "retreat")
        return self._approach(s, grasp)

    # -- phases ------------------------------------------------------------------------------
    def _approach(self, s: ExpertState, grasp: np.ndarray) -> ExpertAction:
        hover = grasp + [0, 0, self.geometry.hover_m]
        xy_err = float(np.linalg.norm((grasp - s.ee_pos)[:2]))
        # close when centred and at (or, blocked by the table, just above / anywhere below) the grasp point
        g = self.geometry
        close_xy = max(self.settings.close_radius_m, g.close_xy_m)
        if xy_err < close_xy and s.ee_pos[2] - grasp[2] < self.settings.close_radius_m:
            return self._out(s, s.ee_pos, GRIPPER_CLOSE, "close")
        if xy_err > max(0.03, g.centre_none_m + 0.005):
            # far away: travel at the hover height (straight up first when low), so the hand does
            # not sweep other objects
            low = s.ee_pos[2] < hover[2] - 0.015
            target = np.array([s.ee_pos[0], s.ee_pos[1], hover[2]]) if low else hover
            return self._out(s, target, GRIPPER_OPEN, "approach")
        # Near: a continuous law, no switching. The hand goes down only as far as it is centred
        # (fully within centre_full_m, not at all beyond centre_none_m), so a sideways error met on
        # the way down lifts it a little instead of pressing a finger onto the object's edge.
        span = max(1e-6, g.centre_none_m - g.centre_full_m)
        frac = float(np.clip(1.0 - (xy_err - g.centre_full_m) / span, 0.0, 1.0))
        target = np.array([grasp[0], grasp[1], hover[2] - frac * (hover[2] - grasp[2])])
        return self._out(s, target, GRIPPER_OPEN, "descend" if frac > 0 else "approach")

    def _carry(self, s: ExpertState, carry_z: float) -> ExpertAction:
        g = self.geometry
        offset = self._held_offset(s) * [1.0, 1.0, 0.0]  # centre the object, not the hand
        release = np.asarray(s.target_pos) + offset + [0, 0, g.release_above_target_m]
        above = np.array([release[0], release[1], carry_z])
        xy_err = float(np.linalg.norm((above - s.ee_pos)[:2]))
        # Once lowering (below the carry height), lowering is continuous in the sideways error: all
        # the way down within place_full_m, not at all beyond place_none_m. Lifting back to the carry
        # height at one radius made a swinging bowl cycle lower -> lift -> carry for 500 steps 1.5-2.6
        # cm off (spatial task 0, init state 18): the height error saturated the step, so the
        # sideways error was never corrected. Arriving at the carry height, lowering starts within
        # place_full_m as before.
        span = max(1e-6, g.place_none_m - g.place_full_m)
        frac = float(np.clip(1.0 - (xy_err - g.place_full_m) / span, 0.0, 1.0))
        if s.ee_pos[2] >= carry_z - 0.03 and xy_err > g.place_full_m:
            frac = 0.0
        if frac == 0.0:
            if s.ee_pos[2] < carry_z - 0.03:  # lift first (small sideways drift allowed)
                target = np.array([s.ee_pos[0], s.ee_pos[1], carry_z])
                return self._out(s, target, GRIPPER_CLOSE, "lift")
            return self._out(s, above, GRIPPER_CLOSE, "carry")
        if frac < 1.0 or s.ee_pos[2] > release[2] + 0.01:
            z = carry_z - frac * (carry_z - release[2])
            return self._out(s, np.array([above[0], above[1], z]), GRIPPER_CLOSE, "lower")
        return self._out(s, s.ee_pos, GRIPPER_OPEN, "release")

    # -- state tests -------------------------------------------------------------------------
    def _in_hand(self, s: ExpertState) -> bool:
        """Fingers partly closed around the object: it sits between them, close to the hand.
        A grasp held off the body (a bowl by its rim) lets the body swing about the fingers, so
        the body's expected position is only known to within the offset's length.

        Opening fingers never hold: without this test a hand reopening near the object read as
        holding it once the fingers passed the hold opening, closed again, and chattered between
        "reopen" and "lift" until the episode ran out (spatial task 0, init state 3)."""
        g = self.geometry
        offset = self._held_offset(s)
        slack = float(np.linalg.norm(offset))
        rel = np.asarray(s.object_pos) + offset - np.asarray(s.ee_pos)
        between = np.linalg.norm(rel[:2]) < 0.03 + slack and abs(rel[2]) < 0.04 + slack
        if not between or s.opening_rate_m_s > FINGER_MOVING_M_S or s.opening_m >= FINGERS_OPEN_M - 0.008:
            return False
        lifted = g.object_rest_z_m is not None and float(s.object_pos[2]) > g.object_rest_z_m + 0.015
        return bool(s.opening_m > g.min_hold_opening_m or lifted)

    def grasp_offset(self, s: ExpertState) -> np.ndarray:
        """Where to grasp: the nominal offset, unless the hand there would be within
        GRASP_CLEARANCE_M of an obstacle and an alternative leaves it GRASP_CLEARANCE_GAIN_M clearer."""
        offsets = self.geometry.grasp_offsets
        if len(offsets) == 1 or s.obstacles is None or len(s.obstacles) == 0:
            return offsets[0]
        clear = [hand_clearance_m(np.asarray(s.object_pos) + o, s.obstacles) for o in offsets]
        best = int(np.argmax(clear))
        if clear[0] < GRASP_CLEARANCE_M and clear[best] > clear[0] + GRASP_CLEARANCE_GAIN_M:
            return offsets[best]
        return offsets[0]

    def _held_offset(self, s: ExpertState) -> np.ndarray:
        """The grasp offset that matches where the object is in the hand (the side it was taken by)."""
        offsets = self.geometry.grasp_offsets
        if len(offsets) == 1:
            return offsets[0]
        miss = [float(np.linalg.norm((np.asarray(s.object_pos) + o - np.asarray(s.ee_pos))[:2])) for o in offsets]
        return offsets[int(np.argmin(miss))]

    def _object_placed(self, s: ExpertState) -> bool:
        rel = np.asarray(s.object_pos) - np.asarray(s.target_pos)
        return bool(np.linalg.norm(rel[:2]) < 0.06 and rel[2] < self.geometry.release_above_target_m)

    # -- action ------------------------------------------------------------------------------
    def _out(self, s: ExpertState, target: np.ndarray, gripper: float, phase: str) -> ExpertAction:
        err = np.asarray(target, dtype=np.float64) - np.asarray(s.ee_pos, dtype=np.float64)
        step = err * self.gain_per_m
        norm = float(np.linalg.norm(step))
        if norm > self.settings.speed:
            step *= self.settings.speed / norm
        rot = self._orientation_correction(np.asarray(s.ee_quat, dtype=np.float64))
        action = np.concatenate([step, rot, [gripper]]).astype(np.float64)
        return ExpertAction(action=action, phase=phase)

    def _orientation_correction(self, quat_xyzw: np.ndarray) -> np.ndarray:
        """Axis-angle command (LIBERO units) that turns the hand back to pointing down."""
        if not np.all(np.isfinite(quat_xyzw)) or np.linalg.norm(quat_xyzw) < 1e-6:
            return np.zeros(3)
        err = Rotation.from_quat(DOWN_QUAT) * Rotation.from_quat(quat_xyzw).inv()
        return np.clip(err.as_rotvec() * self.rot_gain, -self.max_rot, self.max_rot)


def hand_clearance_m(ee_pos: np.ndarray, obstacles: np.ndarray) -> float:
    """Smallest gap (m) between the hand's collision box placed at `ee_pos` and any obstacle box;
    negative: they overlap by that much. obstacles: (N, 2, 3) min/max corners."""
    boxes = np.asarray(obstacles, dtype=np.float64).reshape(-1, 2, 3)
    if boxes.shape[0] == 0:
        return float("inf")
    lo = np.asarray(ee_pos, dtype=np.float64) + HAND_BOX_M[0]
    hi = np.asarray(ee_pos, dtype=np.float64) + HAND_BOX_M[1]
    gaps = np.maximum(boxes[:, 0, :] - hi, lo - boxes[:, 1, :])  # per axis; > 0 = separated along it
    return float(np.min(np.max(gaps, axis=1)))
