"""Test helper, run as its own process: the real `vla_policy` node (PolicyNode: params, limits,
gate, watchdog, lockstep pacing, output modes) with a scripted core Policy in place of a model, so
an end-to-end test knows exactly which actions went in.

    python tests/integration/ur5_scripted_policy.py PARAMS.yaml NODE_NAME [ACTION_SPACE]

The action cycle comes from the latched topic `ur5_e2e/<NODE_NAME>/script` (std_msgs/String,
JSON {"space": "joint_delta_7d", "actions": [[...7 values], ...], "rows": 5}; NaN / Infinity are
valid JSON here, Python's json reads them), so one process (whose model would take many seconds
to import) serves several test cases. Each inference returns `rows` copies of the cycle's next
action; before the first script, a chunk of zeros in ACTION_SPACE (default joint_delta_7d; the
node checks its output.mode against it at configure). PARAMS.yaml should key its values by `/**`.
"""

from __future__ import annotations

import json
import signal
import sys

import numpy as np


def scripted_policy(script: dict):
    import torch
    from torch import nn

    from vla_steer_tools.models.base import ModelAdapter
    from vla_steer_tools.policy import Policy
    from vla_steer_tools.types import ActionChunk

    class Scripted(Policy):
        action_space = script["space"]

        def __init__(self) -> None:
            self.calls = 0
            self._adapter = ModelAdapter(f"scripted {script['name']} (RANDOM WEIGHTS)", {"backbone": [nn.Linear(8, 4)]},
                                         token_matrix=lambda: torch.zeros(16, 4), decode_token=str,
                                         random_weights=True)

        @property
        def adapter(self):
            return self._adapter

        def infer(self, observation):
            actions = script["actions"]
            action = np.asarray(actions[self.calls % len(actions)], np.float64)
            self.calls += 1
            return ActionChunk(np.repeat(action[None, :], script["rows"], axis=0), script["space"],
                               model_id=self._adapter.model_id)  # the test tells the processes' chunks apart

    return Scripted()


def main() -> None:
    import rclpy
    from rclpy.signals import SignalHandlerOptions

    from vla_policy.policy_node import PolicyNode, _interrupt, spin_until_interrupted

    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from std_msgs.msg import String

    params_file, name = sys.argv[1], sys.argv[2]
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    space = sys.argv[3] if len(sys.argv) > 3 else "joint_delta_7d"
    script = {"space": space, "actions": [[0.0] * 7], "rows": 1, "name": name}
    node = PolicyNode(policy=scripted_policy(script), params_file=params_file, node_name=name)
    latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    node.create_subscription(String, f"ur5_e2e/{name}/script", lambda msg: script.update(json.loads(msg.data)), latched)
    try:
        node.autostart()
        spin_until_interrupted(node)
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
