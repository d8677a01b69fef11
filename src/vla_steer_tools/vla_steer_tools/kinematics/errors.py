"""Why an inverse-kinematics request was refused. The node turns each of these into a hold with
the message as the reason, so the message names the numbers that failed."""

from __future__ import annotations

from vla_steer_tools.errors import VlaSteerError


class KinematicsError(VlaSteerError, ValueError):
    """A kinematics request that cannot be answered (non-finite or wrongly sized input, unknown joints)."""


class UnreachableTargetError(KinematicsError):
    """The solver's best joint target leaves the tool farther from the target than the tolerance."""


class SingularConfigurationError(KinematicsError):
    """The arm is (or the solution would be) too close to a singularity for a well-defined IK step."""
