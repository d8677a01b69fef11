"""Demonstration datasets: LeRobot v3 layout on disk, instruction wordings, recomputed statistics."""
