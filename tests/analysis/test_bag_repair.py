"""Bags that were not closed cleanly: no metadata.yaml, and MCAP files cut off at any byte.

The property (Hypothesis, over the cut fraction): `report` on the damaged bag is a clear error that
names `vla-steer bag reindex DIR` (never a traceback); reindex recovers every message flushed
before the cut, in order and byte-exact, invents none, keeps the damaged original, and afterwards
the bag reads with rosbags and carries the publishers' QoS.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

from vla_steer_tools.analysis.bag_repair import BACKUP_SUFFIX, reindex_bag
from vla_steer_tools.analysis.bags import BagDamagedError, BagWriter, bag_qos, bag_topics, make_typestore, read_bag
from vla_steer_tools.cli.main import main as cli_main
from vla_steer_tools.errors import ConfigError

INFINITE = QosTime(9223372036, 854775807)
LATCHED_QOS = Qos(QosHistory.KEEP_LAST, 1, QosReliability.RELIABLE, QosDurability.TRANSIENT_LOCAL,
                  INFINITE, INFINITE, QosLiveliness.AUTOMATIC, INFINITE, False)
STREAM_QOS = LATCHED_QOS._replace(depth=10, reliability=QosReliability.BEST_EFFORT, durability=QosDurability.VOLATILE)
TOPICS = {"/instruction": LATCHED_QOS, "/stream": STREAM_QOS}


class Recording:
    """A bag written the way the recorder writes one (flushes every few messages), with the file
    size after each flush: what a process killed at that moment would have left on disk."""

    def __init__(self, root: Path, n: int = 300, flush_every: int = 37) -> None:
        store = make_typestore()
        String = store.types["std_msgs/msg/String"]
        self.bag = root / "rec"
        self.sent: list[tuple[str, int, bytes]] = []
        self.flushed: list[tuple[int, int]] = []  # (file size, messages in it) after each flush
        with BagWriter(self.bag, store) as writer:
            for topic, qos in TOPICS.items():
                writer.add_topic(topic, "std_msgs/msg/String", [qos])
            for i in range(n):
                topic = "/instruction" if i % 50 == 0 else "/stream"
                raw = bytes(store.serialize_cdr(String(data=f"{topic} message {i} " + "x" * (i % 97)), "std_msgs/msg/String"))
                writer.write(topic, 1_000_000 * (i + 1), raw)
                self.sent.append((topic, 1_000_000 * (i + 1), raw))
                if (i + 1) % flush_every == 0:
                    writer.flush()
                    self.flushed.append((self.mcap.stat().st_size, i + 1))
        self.data = self.mcap.read_bytes()

    @property
    def mcap(self) -> Path:
        return next(self.bag.glob("*.mcap"))

    def durable(self, cut: int) -> int:
        """Messages that were in the file, whole, once `cut` bytes of it existed."""
        return max((count for size, count in self.flushed if size <= cut), default=0)

    def damaged_copy(self, root: Path, cut: int, keep_metadata: bool) -> Path:
        bag = root / "damaged"
        bag.mkdir()
        (bag / self.mcap.name).write_bytes(self.data[:cut])
        if keep_metadata:
            shutil.copy(self.bag / "metadata.yaml", bag / "metadata.yaml")
        return bag


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Recording:
    return Recording(tmp_path_factory.mktemp("recording"))


def _read_raw(bag: Path) -> list[tuple[str, int, bytes]]:
    from rosbags.rosbag2 import Reader

    with Reader(bag) as reader:
        return [(c.topic, t, bytes(raw)) for c, t, raw in reader.messages()]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fraction=st.floats(0.0, 1.0), keep_metadata=st.booleans())
@example(fraction=0.5, keep_metadata=False)  # the cut points of the review
@example(fraction=0.9, keep_metadata=False)
@example(fraction=0.9, keep_metadata=True)
@example(fraction=0.0, keep_metadata=False)
@example(fraction=0.99999, keep_metadata=True)  # only the closing magic is missing
def test_truncated_bag_is_reported_then_recovered(recording, capsys, fraction, keep_metadata):
    cut = int(fraction * len(recording.data))
    with tempfile.TemporaryDirectory() as tmp:
        bag = recording.damaged_copy(Path(tmp), cut, keep_metadata)
        intact = cut == len(recording.data) and keep_metadata

        if not intact:  # the report names the fix instead of a ReaderError / FileNotFoundError traceback
            for argv in (["report", str(bag), "--out", str(Path(tmp) / "rep")], ["report", "--topics", str(bag)]):
                rc = cli_main(argv)
                err = capsys.readouterr().err
                assert rc == 2 and f"vla-steer bag reindex {bag}" in err, err

        result = reindex_bag(bag)
        recovered = _read_raw(bag)
        assert result.messages == len(recovered)
        assert recovered == recording.sent[:len(recovered)]  # in order, byte-exact, nothing invented
        assert len(recovered) >= recording.durable(cut)  # nothing flushed before the cut is lost
        if cut < len(recording.data):
            assert (bag / (recording.mcap.name + BACKUP_SUFFIX)).read_bytes() == recording.data[:cut]
        counts = {t: n for t, (_, n) in bag_topics(bag).items()}
        assert sum(counts.values()) == len(recovered)
        for topic, profiles in bag_qos(bag).items():
            assert profiles == [TOPICS[topic]]  # the publishers' QoS survives reindex


def test_issue_cut_points_recover_what_mcap_reads(recording, tmp_path, capsys):
    """The review's numbers on this recording: at a 50% / 90% cut, every flushed message is back."""
    for fraction in (0.5, 0.9):
        root = tmp_path / str(fraction)
        root.mkdir()
        cut = int(fraction * len(recording.data))
        bag = recording.damaged_copy(root, cut, keep_metadata=False)
        assert cli_main(["bag", "reindex", str(bag)]) == 0
        out = capsys.readouterr().out
        n = len(_read_raw(bag))
        assert f"recovered {n} messages on 2 topics" in out and "original kept as" in out
        assert n >= recording.durable(cut) > 0


def test_report_after_reindex_reads_the_recovered_part(tmp_path, capsys):
    from test_bags_and_plots import _write_synthetic_episode

    bag = tmp_path / "ep"
    _write_synthetic_episode(bag, make_typestore(), n=400)
    mcap = next(bag.glob("*.mcap"))
    mcap.write_bytes(mcap.read_bytes()[: mcap.stat().st_size // 2])
    (bag / "metadata.yaml").unlink()
    assert cli_main(["report", str(bag)]) == 2
    assert f"vla-steer bag reindex {bag}" in capsys.readouterr().err
    assert cli_main(["bag", "reindex", str(bag)]) == 0
    capsys.readouterr()
    assert cli_main(["report", str(bag), "--out", str(tmp_path / "rep")]) == 0
    out = capsys.readouterr().out
    assert "recovered by `vla-steer bag reindex`" in out and "steering on at" in out


def test_no_metadata_but_intact_mcap_is_reindexed_without_rewriting(recording, tmp_path):
    bag = recording.damaged_copy(tmp_path, len(recording.data), keep_metadata=False)
    with pytest.raises(BagDamagedError, match="no metadata.yaml"):
        list(read_bag(bag))
    result = reindex_bag(bag)
    assert [f.backup for f in result.files] == [None]  # closed cleanly: only metadata.yaml is rebuilt
    assert (bag / recording.mcap.name).read_bytes() == recording.data
    assert _read_raw(bag) == recording.sent
    assert bag_topics(bag) == bag_topics(recording.bag)


def test_reindex_refuses_what_is_not_an_mcap_bag(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        reindex_bag(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no .mcap file"):
        reindex_bag(tmp_path / "empty")
    assert cli_main(["report", "--topics", str(tmp_path / "missing")]) == 2
