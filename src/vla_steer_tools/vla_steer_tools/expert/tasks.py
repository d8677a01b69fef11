"""Per-task grasp geometry for the scripted expert: which object, which target, where to hold it.

Only tasks listed here have an expert; `geometry_for` names the supported ones otherwise. Offsets
were set by looking at the objects' collision geometry and checked by the success rate of the
expert over the init states (README, "Demonstrations").
"""

from __future__ import annotations

from typing import Mapping

from ..errors import ConfigError
from .waypoint_expert import TaskGeometry

#: A bowl is round: its rim on the +y side is as good a grasp as on the -y side.
BOWL_OTHER_RIM = ((0.0, 0.047, 0.04),)

#: (suite, task id) -> geometry. Heights are world z (LIBERO's floor scenes sit at z = 0, the
#: table scenes at about z = 0.90).
TASKS: Mapping[tuple[str, int], TaskGeometry] = {
    # cream cheese box -> basket: top grasp across the box's short side (4.2 cm in a 7.8 cm hand:
    # 1.8 cm of clearance per finger), so the descent and the close tolerate a centimetre
    ("libero_object", 1): TaskGeometry("cream_cheese_1", "basket_1", grasp_offset_m=(0.0, 0.0, 0.004),
                                       hover_m=0.08, release_above_target_m=0.13, table_z_m=0.0,
                                       min_hold_opening_m=0.02, centre_full_m=0.008, centre_none_m=0.025,
                                       close_xy_m=0.012),
    # black bowl -> plate: the bowl is held by its rim, on the -y side or (clear of obstacles) the +y side
    ("libero_spatial", 0): TaskGeometry("akita_black_bowl_1", "plate_1", grasp_offset_m=(0.0, -0.047, 0.04),
                                        hover_m=0.08, release_above_target_m=0.08, table_z_m=0.90,
                                        min_hold_opening_m=0.0045, object_rest_z_m=0.899,
                                        alt_grasp_offsets_m=BOWL_OTHER_RIM),
    # the same bowl and plate elsewhere on the table: the same rim grasp
    ("libero_spatial", 1): TaskGeometry("akita_black_bowl_1", "plate_1", grasp_offset_m=(0.0, -0.047, 0.04),
                                        hover_m=0.08, release_above_target_m=0.08, table_z_m=0.90,
                                        min_hold_opening_m=0.0045, object_rest_z_m=0.899,
                                        alt_grasp_offsets_m=BOWL_OTHER_RIM),
    ("libero_spatial", 2): TaskGeometry("akita_black_bowl_1", "plate_1", grasp_offset_m=(0.0, -0.047, 0.04),
                                        hover_m=0.08, release_above_target_m=0.08, table_z_m=0.90,
                                        min_hold_opening_m=0.0045, object_rest_z_m=0.899,
                                        alt_grasp_offsets_m=BOWL_OTHER_RIM),
}


def geometry_for(suite: str, task_id: int) -> TaskGeometry:
    key = (suite, int(task_id))
    if key not in TASKS:
        known = ", ".join(f"{s} task {t}" for s, t in TASKS)
        raise ConfigError(f"no scripted expert for {suite} task {task_id}; supported: {known}")
    return TASKS[key]


#: LIBERO's own instruction of each supported task (benchmark `language`), so that datasets and
#: training can rebuild the wordings without importing the simulator.
TASK_TEXTS: Mapping[tuple[str, int], str] = {
    ("libero_object", 1): "pick up the cream cheese and place it in the basket",
    ("libero_spatial", 0): "pick up the black bowl between the plate and the ramekin and place it on the plate",
    ("libero_spatial", 1): "pick up the black bowl next to the ramekin and place it on the plate",
    ("libero_spatial", 2): "pick up the black bowl from table center and place it on the plate",
}


def task_text(suite: str, task_id: int) -> str:
    key = (suite, int(task_id))
    if key not in TASK_TEXTS:
        raise ConfigError(f"no instruction text recorded for {suite} task {task_id}")
    return TASK_TEXTS[key]
