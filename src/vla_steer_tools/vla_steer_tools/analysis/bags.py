"""rosbag2 files without rosbag2: write raw CDR messages and read them back with `rosbags`.

Recording needs only the serialized bytes a ROS subscription delivers (`raw=True`), so this module
stays ROS-free: the node side hands us (topic, type name, bytes, time) and we store them in MCAP
(metadata version 9, Jazzy/Kilted; pass version=8 for Humble readers). The project's own message
types are registered from their .msg text so that any rosbag2/rosbags user can decode the bag.

Reading is strict about damage and says how to fix it: a bag that was never closed (no
metadata.yaml) or whose MCAP is cut off raises `BagDamagedError` naming `vla-steer bag reindex DIR`
(`bag_repair.py`) instead of a rosbags traceback.
"""

from __future__ import annotations

import contextlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from rosbags.interfaces import Qos
from rosbags.rosbag2 import Reader, ReaderError, StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from ..errors import ConfigError

MSGS_PACKAGE = "vla_steer_msgs"

#: What rosbags raises on a damaged file (ReaderError at every cut point of a truncated MCAP; struct
#: and EOF errors from its record parsers); the reader turns these into one BagDamagedError naming the fix.
READ_ERRORS: tuple[type[BaseException], ...] = (ReaderError, struct.error, EOFError)


class BagDamagedError(ConfigError):
    """A bag that cannot be read as it is: never closed, or its storage file is cut off or corrupt."""


def reindex_hint(path: Path) -> str:
    return f"recover what it holds with: vla-steer bag reindex {path}"


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

    def add_topic(self, topic: str, msgtype: str, offered_qos: Sequence[Qos] = ()) -> None:
        """Declare a topic; `msgtype` like "sensor_msgs/msg/Image". `offered_qos` are the publishers'
        profiles: `ros2 bag play` offers them again (a latched topic stays transient-local)."""
        if topic in self._connections:
            return
        if msgtype not in self.typestore.fielddefs:
            raise ConfigError(f"bag type {msgtype!r} unknown to the typestore")
        self._connections[topic] = self._writer.add_connection(
            topic, msgtype, typestore=self.typestore, offered_qos_profiles=list(offered_qos))

    def has_topic(self, topic: str) -> bool:
        return topic in self._connections

    def write(self, topic: str, stamp_ns: int, data: bytes) -> None:
        self._writer.write(self._connections[topic], stamp_ns, data)
        self.count += 1

    def flush(self) -> None:
        """Put every message written so far into the file (ends the pending MCAP chunk).

        rosbags keeps up to 1 MiB of messages in memory before it writes a chunk; a recorder that
        is SIGKILLed would lose them. After flush() they are in the file, so `bag reindex` recovers
        them. Uses rosbags' MCAP writer internals (rosbags is pinned); a no-op where they differ.
        """
        storage = getattr(self._writer, "storage", None) if self._writer is not None else None
        chunk = getattr(storage, "chunk", None)
        if chunk is None or not hasattr(storage, "close_chunk") or not chunk.msgs:
            return
        storage.close_chunk()
        storage.bio.flush()

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


def check_bag_dir(path: Path) -> None:
    """Raise a clear error unless `path` is a rosbag2 directory with metadata.yaml."""
    if not path.is_dir():
        raise ConfigError(f"bag {path} does not exist or is not a directory")
    if (path / "metadata.yaml").is_file():
        return
    storage = sorted(p.name for p in path.iterdir() if p.suffix in (".mcap", ".db3"))
    if storage:
        raise BagDamagedError(f"bag {path} has no metadata.yaml but holds {', '.join(storage)}: the recording "
                              f"was not closed (killed, or out of disk); {reindex_hint(path)}")
    raise ConfigError(f"{path} is not a rosbag2 directory (no metadata.yaml)")


@contextlib.contextmanager
def open_bag(path: str | Path) -> Iterator[Reader]:
    """rosbags' Reader on a checked bag directory; a damaged storage file becomes BagDamagedError."""
    path = Path(path)
    check_bag_dir(path)
    try:
        with Reader(path) as reader:
            yield reader
    except READ_ERRORS as exc:
        raise BagDamagedError(f"bag {path} cannot be read ({type(exc).__name__}: {exc}); {reindex_hint(path)}") from exc


def read_bag(path: str | Path, topics: Iterable[str] | None = None, typestore: Typestore | None = None) -> Iterator[BagMessage]:
    """Yield decoded messages in time order (optionally only `topics`)."""
    store = typestore or make_typestore()
    wanted = set(topics) if topics is not None else None
    with open_bag(path) as reader:
        conns = [c for c in reader.connections if wanted is None or c.topic in wanted]
        for conn, stamp, raw in reader.messages(connections=conns):
            yield BagMessage(conn.topic, conn.msgtype, stamp, store.deserialize_cdr(raw, conn.msgtype))


def bag_topics(path: str | Path) -> dict[str, tuple[str, int]]:
    """topic -> (type, message count)."""
    with open_bag(path) as reader:
        return {c.topic: (c.msgtype, c.msgcount) for c in reader.connections}


def bag_qos(path: str | Path) -> dict[str, list[Qos]]:
    """topic -> the offered QoS profiles metadata.yaml records (what `ros2 bag play` offers)."""
    with open_bag(path) as reader:
        return {c.topic: list(c.ext.offered_qos_profiles) for c in reader.connections}
