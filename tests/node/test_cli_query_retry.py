"""A lost service reply: the CLI's queries (get_state, get_available_transitions) send the request
again, so one unanswered request does not stall `vla-steer lifecycle` for its whole timeout."""

from __future__ import annotations

import threading

import pytest

pytestmark = pytest.mark.ros


def test_a_query_whose_first_reply_never_comes_is_answered_by_the_resent_request(monkeypatch):
    import rclpy
    from lifecycle_msgs.srv import GetState
    from rclpy.executors import MultiThreadedExecutor

    from vla_policy import cli_ros

    monkeypatch.setattr(cli_ros, "QUERY_RETRY_S", 0.5)
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    server = rclpy.create_node("lost_reply_server", context=ctx)
    release = threading.Event()
    calls = []

    def answer(request, response):
        calls.append(1)
        if len(calls) == 1:
            release.wait(30.0)  # the first reply is "lost": it comes only after the test is done
        response.current_state.label = "unconfigured"
        return response

    server.create_service(GetState, "lost_reply_server/get_state", answer,
                          callback_group=rclpy.callback_groups.ReentrantCallbackGroup())
    executor = MultiThreadedExecutor(num_threads=2, context=ctx)
    executor.add_node(server)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        with cli_ros.cli_node("retry_test") as node:
            out = cli_ros.call_service(node, GetState, "lost_reply_server/get_state", GetState.Request(), 60.0,
                                       idempotent=True)
        assert out.current_state.label == "unconfigured" and len(calls) >= 2
    finally:
        release.set()
        executor.shutdown(timeout_sec=5.0)
        server.destroy_node()
        ctx.try_shutdown()
