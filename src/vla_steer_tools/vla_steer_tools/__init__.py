"""vla_steer_tools — look inside vision-language-action models and steer them.

The core is plain Python + torch (no ROS imports). Layout:
  types.py         Observation, ActionChunk, NeuronRef: the values passed between layers
  errors.py        typed errors that name the bad value and list the valid ones
  policy.py        the Policy interface (infer/reset) and SteeredPolicy (live steering swaps)
  models/          one file per model family + the ModelAdapter that says where the FFNs are
  steering/        hooks.py (activation edits), directions.py (direction files), probe.py (telemetry)
  interp/          projection.py (value vectors x token matrix), concepts.py (discovery)
  analysis/        episode metrics, rosbag2 reading, plots and reports
  fixtures/        tiny random checkpoints in the official formats (tests and the offline demo)
  cli/             the `vla-steer` command
"""

__version__ = "0.1.0"
