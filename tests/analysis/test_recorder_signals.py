"""`vla-steer record` in its own process, stopped the ways a recorder really stops: SIGTERM closes the
bag like Ctrl-C (metadata.yaml with the publishers' QoS), SIGKILL loses nothing that was flushed
and `bag reindex` recovers it. Every wait is on a condition (subscribed, flushed, exited)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest

pytestmark = pytest.mark.ros
rclpy = pytest.importorskip("rclpy")
pytest.importorskip("vla_policy.bag_recorder")

from rclpy.context import Context  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from rosbags.interfaces import QosDurability, QosReliability  # noqa: E402
from std_msgs.msg import String  # noqa: E402

from vla_steer_tools.analysis.bag_repair import ScanResult, reindex_bag, scan_mcap  # noqa: E402
from vla_steer_tools.analysis.bags import BagDamagedError, bag_qos, bag_topics, read_bag  # noqa: E402
from vla_steer_tools.cli.main import main as cli_main  # noqa: E402

LATCHED, STREAM = "/test_rec/instruction", "/test_rec/stream"
N_STREAM = 25
TIMEOUT_S = 120.0  # generous: CI machines are slow; nothing below waits for a fixed time


def wait_for(predicate: Callable[[], Any], what: str, timeout_s: float = TIMEOUT_S) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def messages_on_disk(bag: Path) -> int:
    """Whole messages the recorder has put into the file so far (read like reindex does)."""
    files = list(bag.glob("*.mcap"))
    if not files:
        return 0
    from mcap.records import Message

    return sum(isinstance(r, Message) for r in scan_mcap(files[0], ScanResult(size=files[0].stat().st_size)))


class Publisher:
    """A latched instruction (published once, before the recorder exists) and a volatile stream."""

    def __init__(self) -> None:
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("test_rec_publisher", context=self.context)
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.latched = self.node.create_publisher(String, LATCHED, latched)
        self.stream = self.node.create_publisher(String, STREAM, QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
        self.latched.publish(String(data="pick up the bowl"))
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=2.0)
        self.node.destroy_node()
        self.context.try_shutdown()


def start_recorder(bag: Path, log: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "vla_steer_tools.cli.main", "record", str(bag),
           "--topic", f"{LATCHED}:std_msgs/msg/String", "--topic", f"{STREAM}:std_msgs/msg/String",
           "--flush-period", "0.2"]
    return subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env)


@pytest.fixture
def recording(tmp_path):
    """A recorder subprocess that has received the latched message and N_STREAM stream messages,
    all of them flushed to its MCAP file."""
    pub = Publisher()
    bag, log = tmp_path / "bag", tmp_path / "recorder.log"
    proc = start_recorder(bag, log)
    try:
        wait_for(lambda: pub.stream.get_subscription_count() > 0 and pub.latched.get_subscription_count() > 0
                 or proc.poll() is not None, "the recorder to subscribe")
        assert proc.poll() is None, log.read_text()
        for i in range(N_STREAM):
            pub.stream.publish(String(data=f"m{i}"))
        wait_for(lambda: messages_on_disk(bag) == N_STREAM + 1 or proc.poll() is not None, "the messages on disk")
        assert proc.poll() is None, log.read_text()
        yield proc, bag, log
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=TIMEOUT_S)
        pub.close()


def test_sigterm_closes_the_bag_with_the_publishers_qos(recording):
    proc, bag, log = recording
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=TIMEOUT_S) == 0, log.read_text()
    assert (bag / "metadata.yaml").is_file(), log.read_text()
    assert bag_topics(bag) == {LATCHED: ("std_msgs/msg/String", 1), STREAM: ("std_msgs/msg/String", N_STREAM)}
    assert [m.msg.data for m in read_bag(bag, [STREAM])] == [f"m{i}" for i in range(N_STREAM)]
    qos = bag_qos(bag)
    assert [q.durability for q in qos[LATCHED]] == [QosDurability.TRANSIENT_LOCAL]  # ros2 bag play re-latches it
    assert [q.reliability for q in qos[LATCHED]] == [QosReliability.RELIABLE]
    assert [q.durability for q in qos[STREAM]] == [QosDurability.VOLATILE]
    assert "transient_local" in (bag / "metadata.yaml").read_text()  # rosbag2's v9 YAML names policies


def test_sigkill_loses_nothing_flushed_and_reindex_recovers_it(recording, capsys):
    proc, bag, _ = recording
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=TIMEOUT_S)
    assert not (bag / "metadata.yaml").exists()
    with pytest.raises(BagDamagedError, match=f"vla-steer bag reindex {bag}"):
        bag_topics(bag)
    assert cli_main(["bag", "reindex", str(bag)]) == 0
    out = capsys.readouterr().out
    assert f"recovered {N_STREAM + 1} messages" in out and STREAM in out
    assert bag_topics(bag)[STREAM] == ("std_msgs/msg/String", N_STREAM)
    assert [q.durability for q in bag_qos(bag)[LATCHED]] == [QosDurability.TRANSIENT_LOCAL]
    assert reindex_bag(bag).messages == N_STREAM + 1  # a second reindex finds the repaired file intact
