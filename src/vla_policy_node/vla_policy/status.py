"""What the node's diagnostics say: one DiagnosticStatus whose level and message follow the
lifecycle state, the inputs, the inference outcomes and the command gate — never "OK running"
while inferences fail or every command is refused.

`Health` counts outcomes (no ROS, no clock); `assess` turns them into (level, message);
`diagnostics_msg` wraps that with the operator's numbers (inferences, latency, input ages).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from std_msgs.msg import Header

STATUS_NAME = "vla_policy: policy"
#: Consecutive failed inferences after which the status is ERROR instead of WARN.
ERROR_AFTER_FAILURES = 3

OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR


class Health:
    """Outcomes of the latest inferences and commands."""

    def __init__(self) -> None:
        self.failures = 0  # consecutive failed (or non-finite) inferences
        self.failure = ""  # the latest failure's reason
        self.garbage = False  # the latest failure was a non-finite output: ERROR at once
        self.refused = ""  # why the latest command was not sent ("" when it was)
        self.total_failures = 0

    def inference_failed(self, reason: str, non_finite: bool = False) -> None:
        self.failures += 1
        self.total_failures += 1
        self.failure, self.garbage = reason, non_finite

    def inference_ok(self) -> None:
        self.failures, self.failure, self.garbage = 0, "", False

    def command_refused(self, reason: str) -> None:
        self.refused = reason

    def command_sent(self) -> None:
        self.refused = ""


def assess(lifecycle: str, config_error: str, hold: Sequence[str], health: Health) -> tuple[int, str]:
    """(level, message): ERROR for a failed configure or failing model, WARN while unconfigured,
    holding, failing once or refusing commands, OK only when active and commanding (or inactive)."""
    if lifecycle != "active":
        if config_error:
            return ERROR, f"{lifecycle}: configure failed: {config_error}"
        if lifecycle == "inactive":
            return OK, "inactive: model loaded, not commanding (activate to start)"
        return WARN, f"{lifecycle}: not commanding (configure, then activate)"
    if health.failures and (health.garbage or health.failures >= ERROR_AFTER_FAILURES):
        return ERROR, f"{health.failures} inference(s) in a row failed, holding: {health.failure}"
    if health.failures:
        return WARN, f"inference failed, holding: {health.failure}"
    if hold:
        return WARN, "hold: " + "; ".join(hold)
    if health.refused:
        return WARN, f"command refused: {health.refused}"
    return OK, "running"


def diagnostics_msg(level: int, message: str, values: Mapping[str, Any], hardware_id: str,
                    stamp: Time) -> DiagnosticArray:
    status = DiagnosticStatus(level=level, name=STATUS_NAME, hardware_id=hardware_id, message=message,
                              values=[KeyValue(key=k, value=str(v)) for k, v in values.items()])
    return DiagnosticArray(header=Header(stamp=stamp), status=[status])
