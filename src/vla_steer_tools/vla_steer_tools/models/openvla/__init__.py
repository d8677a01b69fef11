"""OpenVLA (Prismatic) re-implemented on transformers 5: config, modeling, processing, policy."""

from .policy import OpenVLAPolicy, load_openvla

__all__ = ["OpenVLAPolicy", "load_openvla"]
