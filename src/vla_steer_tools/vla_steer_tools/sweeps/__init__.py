"""Closed-loop steering sweeps: the plan of cells (plan.py) and the resumable results table (table.py).
The simulator side (episodes, Ray workers, the CLI) lives in libero_sim_bridge, so this core stays
free of any simulator and of ROS."""
