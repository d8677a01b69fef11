"""rosbag2 files without rosbag2: write raw CDR messages and read them back with `rosbags`.

Recording needs only the serialized bytes a ROS subscription delivers (`raw=True`), so this module
stays ROS-free: the node side hands us (topic, type name, bytes, time) and we store them in MCAP
(metadata version 9, Jazzy/Kilted; pass version=8 for Humble readers). The project's own message
types are registered from their .msg text so that any rosbag2/rosbags user can decode the bag.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from ..errors import ConfigError

MSGS_PACKAGE = "vla_steer_msgs"


def find_msg_dirs(package: str = MSGS_PACKAGE) -> list[Path]:
    """Directories holding `package`'s .msg files: installed share dirs, else the source tree."""
    dirs: list[Path] = []
    for prefix in filter(None, os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)):
        candidate = Path(prefix) / "share" / package / "msg"
        if candidate.is_dir():
            dirs.append(candidate)
    source = Path(__file__).resolve().parents[3] / package / "msg"
    if not dirs and source.is_dir():
        dirs.append(source)
    return dirs


def make_typestore(msg_dirs: Iterable[Path] | None = None) -> Typestore:
    """Kilted's standard types plus every vla_steer_msgs message type."""
    store = get_typestore(Stores.ROS2_KILTED)
    types: dict[str, Any] = {}
    for directory in msg_dirs if msg_dirs is not None else find_msg_dirs():
        for path in sorted(Path(directory).glob("*.msg")):
            types.update(get_types_from_msg(path.read_text(), f"{MSGS_PACKAGE}/msg/{path.stem}"))
    if not types:
        raise ConfigError(f"no {MSGS_PACKAGE} .msg files found (is the workspace built and sourced?)")
    store.register(types)
    return store


class BagWriter:
    """Append raw CDR messages to a new rosbag2 directory (MCAP storage)."""

    def __init__(self, path: str | Path, typestore: Typestore | None = None, version: int = 9) -> None:
        self.path = Path(path)
        if self.path.exists():
            raise ConfigError(f"bag {self.path} already exists; rosbag2 never overwrites a bag")
        self.typestore = typestore or make_typestore()
        self._writer = Writer(self.path, version=version, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        self._connections: dict[str, Any] = {}
        self.count = 0

    def add_topic(self, topic: str, msgtype: str) -> None:
        """Declare a topic; `msgtype` like "sensor_msgs/msg/Image"."""
        if topic in self._connections:
            return
        if msgtype not in self.typestore.fielddefs:
            raise ConfigError(f"bag type {msgtype!r} unknown to the typestore")
        self._connections[topic] = self._writer.add_connection(topic, msgtype, typestore=self.typestore)

    def write(self, topic: str, stamp_ns: int, data: bytes) -> None:
        self._writer.write(self._connections[topic], stamp_ns, data)
        self.count += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None  # type: ignore[assignment]

    def __enter__(self) -> "BagWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class BagMessage:
    topic: str
    msgtype: str
    stamp_ns: int
    msg: Any


def read_bag(path: str | Path, topics: Iterable[str] | None = None, typestore: Typestore | None = None) -> Iterator[BagMessage]:
    """Yield decoded messages in time order (optionally only `topics`)."""
    path = Path(path)
    if not (path / "metadata.yaml").is_file():
        raise ConfigError(f"{path} is not a rosbag2 directory (no metadata.yaml)")
    store = typestore or make_typestore()
    wanted = set(topics) if topics is not None else None
    with Reader(path) as reader:
        conns = [c for c in reader.connections if wanted is None or c.topic in wanted]
        for conn, stamp, raw in reader.messages(connections=conns):
            yield BagMessage(conn.topic, conn.msgtype, stamp, store.deserialize_cdr(raw, conn.msgtype))


def bag_topics(path: str | Path) -> dict[str, tuple[str, int]]:
    """topic -> (type, message count)."""
    with Reader(Path(path)) as reader:
        return {c.topic: (c.msgtype, c.msgcount) for c in reader.connections}
