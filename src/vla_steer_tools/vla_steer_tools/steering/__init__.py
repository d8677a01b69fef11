"""Steering: direction files (directions.py), activation-editing hooks (hooks.py), telemetry (probe.py)."""

from .directions import Direction, DirectionLibrary, load_direction, save_direction
from .hooks import POSITIONS, Steerer, SteeringConfig, steering
from .probe import ConceptStat, probing

__all__ = [
    "POSITIONS", "ConceptStat", "Direction", "DirectionLibrary", "Steerer", "SteeringConfig",
    "load_direction", "probing", "save_direction", "steering",
]
