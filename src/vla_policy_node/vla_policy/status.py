"""The node's diagnostics message: one DiagnosticStatus saying loading / running / hold / failed,
with the numbers an operator looks at (inferences, latency, rejected frames, input ages)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from std_msgs.msg import Header

STATUS_NAME = "vla_policy: policy"


def diagnostics_msg(worker_state: str, hold: Sequence[str], values: Mapping[str, Any], hardware_id: str,
                    stamp: Time) -> DiagnosticArray:
    """ERROR when the model failed, WARN while loading or holding, OK while running."""
    if worker_state.startswith("failed"):
        level, message = DiagnosticStatus.ERROR, worker_state
    elif worker_state != "ready":
        level, message = DiagnosticStatus.WARN, worker_state
    elif hold:
        level, message = DiagnosticStatus.WARN, "hold: " + "; ".join(hold)
    else:
        level, message = DiagnosticStatus.OK, "running"
    status = DiagnosticStatus(level=level, name=STATUS_NAME, hardware_id=hardware_id, message=message,
                              values=[KeyValue(key=k, value=str(v)) for k, v in values.items()])
    return DiagnosticArray(header=Header(stamp=stamp), status=[status])
