"""Recover what a damaged rosbag2 (MCAP) bag still holds and rebuild its metadata.yaml: what
`ros2 bag reindex` does, without rosbag2.

A recorder that is killed (SIGKILL, power cut, full disk) or a copy that is cut short leaves an MCAP
file without its summary section, maybe ending inside a record, and no metadata.yaml (rosbag2 and
rosbags write it on close). The files are read with mcap's own sequential `StreamReader`, which
needs neither the footer nor the summary, and stops only where the data stops. Every whole record
before that point is kept, including the whole messages at the start of a cut-off (uncompressed)
chunk. A file that was not closed cleanly is rewritten as a valid indexed MCAP holding exactly those
records, so rosbags and rosbag2 readers open it; its original bytes stay next to it as
`<name>.mcap.damaged` (never deleted). metadata.yaml is then written from what was read, with the
publishers' QoS profiles the channels carry, in rosbag2's YAML format (rosbags' dump_qos).
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterator

from mcap.exceptions import EndOfFile, McapError, RecordLengthLimitExceeded
from mcap.opcode import Opcode
from mcap.records import Channel, McapRecord, Message, Schema
from mcap.stream_reader import StreamReader
from mcap.writer import CompressionType, Writer as McapFileWriter
from rosbags.rosbag2.metadata import dump_qos_v8, dump_qos_v9, parse_qos
from ruamel.yaml import YAML

from ..atomic import atomic_write_text
from ..errors import ConfigError

#: What a cut-off or corrupt file makes mcap's reader raise (CRC mismatches are ValueErrors).
SCAN_ERRORS: tuple[type[BaseException], ...] = (McapError, struct.error, ValueError)
BACKUP_SUFFIX = ".damaged"


class _ExactReader:
    """A file for mcap's StreamReader that raises EndOfFile on a short read.

    mcap's stream returns fewer bytes than asked when the file ends inside a record (a message
    would come back with its payload cut short); here a cut-off record is never taken as whole.
    """

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.pos = raw.tell()

    def read(self, n: int) -> bytes:
        data = self._raw.read(n)
        if len(data) < n:
            raise EndOfFile()
        self.pos += n
        return data


@dataclass
class ScanResult:
    """What one sequential pass over an MCAP file found (filled in as records are read)."""

    size: int
    complete: bool = False  # the footer was reached: the file was closed cleanly
    read_upto: int = 0  # bytes covered by whole records that were read
    error: str = ""  # what stopped the pass early


def scan_mcap(path: Path, result: ScanResult) -> Iterator[McapRecord]:
    """Yield the Schema, Channel and Message records of `path` in file order, as far as readable.

    Never raises on damaged data: it stops, and `result` says where and why.
    """
    with path.open("rb") as raw:
        stream = _ExactReader(raw)
        reader = StreamReader(stream, validate_crcs=True, record_size_limit=max(result.size, 1))  # type: ignore[arg-type]
        try:
            for record in reader.records:
                result.read_upto = stream.pos
                if isinstance(record, (Schema, Channel, Message)):
                    yield record
            result.read_upto = stream.pos
            result.complete = True  # footer and closing magic read (records ends only there)
            return
        except SCAN_ERRORS as exc:
            result.error = _describe(exc, result)
        if result.read_upto > 0:
            yield from _salvage_chunk(raw, result)


def _describe(exc: BaseException, result: ScanResult) -> str:
    if isinstance(exc, (EndOfFile, RecordLengthLimitExceeded)):  # the limit is the file's size
        return f"the file ends inside a record at byte {result.size} (whole records up to byte {result.read_upto})"
    return f"unreadable record after byte {result.read_upto}: {type(exc).__name__}: {exc}"


def _salvage_chunk(raw: IO[bytes], result: ScanResult) -> Iterator[McapRecord]:
    """The whole records at the start of a chunk the file ends inside (rosbags writes them
    uncompressed), read with mcap's StreamReader over the chunk's records."""
    start = result.read_upto
    raw.seek(start)
    head = raw.read(9)
    if len(head) < 9 or head[0] != Opcode.CHUNK:
        return
    body = raw.read()
    fixed = 8 + 8 + 8 + 4  # start time, end time, uncompressed size, crc
    if len(body) < fixed + 4:
        return
    (name_len,) = struct.unpack_from("<I", body, fixed)
    records_at = fixed + 4 + name_len + 8
    if len(body) < records_at or body[fixed + 4:fixed + 4 + name_len] != b"":
        return  # a compressed chunk cannot be read in part
    inner = _ExactReader(io.BytesIO(body[records_at:]))
    base = start + 9 + records_at
    try:
        for record in StreamReader(inner, skip_magic=True).records:  # type: ignore[arg-type]
            result.read_upto = base + inner.pos
            if isinstance(record, (Schema, Channel, Message)):
                yield record
    except SCAN_ERRORS:
        return


@dataclass
class TopicRecovery:
    """One channel of the bag: name, type, encoding, offered QoS (YAML text) and messages read."""

    topic: str
    msgtype: str
    encoding: str
    qos_yaml: str
    count: int = 0
    type_hash: str = ""


@dataclass
class FileRecovery:
    path: Path
    scan: ScanResult
    topics: dict[int, TopicRecovery] = field(default_factory=dict)  # by channel id
    start_ns: int = 2**63 - 1
    end_ns: int = 0
    backup: Path | None = None  # where the damaged original was kept, when the file was rewritten

    @property
    def messages(self) -> int:
        return sum(t.count for t in self.topics.values())


def recover_file(path: Path) -> FileRecovery:
    """One pass over `path`: channels, per-channel message counts and times, how far it was readable."""
    rec = FileRecovery(path, ScanResult(size=path.stat().st_size))
    schemas: dict[int, Schema] = {}
    for record in scan_mcap(path, rec.scan):
        if isinstance(record, Schema):
            schemas[record.id] = record
        elif isinstance(record, Channel) and record.id not in rec.topics:
            schema = schemas.get(record.schema_id)
            rec.topics[record.id] = TopicRecovery(
                record.topic, schema.name if schema else "", record.message_encoding,
                record.metadata.get("offered_qos_profiles", ""), type_hash=record.metadata.get("topic_type_hash", ""))
        elif isinstance(record, Message) and record.channel_id in rec.topics:
            rec.topics[record.channel_id].count += 1
            rec.start_ns = min(rec.start_ns, record.log_time)
            rec.end_ns = max(rec.end_ns, record.log_time)
    return rec


def rewrite_file(rec: FileRecovery) -> None:
    """Write the readable records of a damaged file as a valid MCAP under its name; keep the original.

    The new file is complete before anything is renamed, and the original is moved aside, not
    deleted: an interrupted reindex leaves both.
    """
    tmp = rec.path.with_name(rec.path.name + ".repaired")
    try:
        with tmp.open("wb") as out:
            _copy_records(rec.path, out)
            out.flush()
            os.fsync(out.fileno())
        rec.backup = _free_name(rec.path.with_name(rec.path.name + BACKUP_SUFFIX))
        os.replace(rec.path, rec.backup)
        os.replace(tmp, rec.path)
    finally:
        tmp.unlink(missing_ok=True)


def _free_name(path: Path) -> Path:
    candidate, n = path, 1
    while candidate.exists():
        candidate, n = path.with_name(f"{path.name}.{n}"), n + 1
    return candidate


def _copy_records(src: Path, out: IO[bytes]) -> None:
    """Stream every readable Schema/Channel/Message of `src` into a new indexed MCAP."""
    writer = McapFileWriter(out, compression=CompressionType.NONE)
    writer.start(profile="ros2", library="vla-steer bag reindex")
    schema_ids: dict[int, int] = {}
    channel_ids: dict[int, int] = {}
    for record in scan_mcap(src, ScanResult(size=src.stat().st_size)):
        if isinstance(record, Schema) and record.id not in schema_ids:
            schema_ids[record.id] = writer.register_schema(record.name, record.encoding, record.data)
        elif isinstance(record, Channel) and record.id not in channel_ids:
            channel_ids[record.id] = writer.register_channel(
                record.topic, record.message_encoding, schema_ids.get(record.schema_id, 0), dict(record.metadata))
        elif isinstance(record, Message) and record.channel_id in channel_ids:
            writer.add_message(channel_ids[record.channel_id], record.log_time, record.data,
                               record.publish_time, record.sequence)
    writer.finish()


@dataclass
class ReindexResult:
    bag: Path
    files: list[FileRecovery]

    @property
    def messages(self) -> int:
        return sum(f.messages for f in self.files)

    def topic_counts(self) -> dict[str, tuple[str, int]]:
        """topic -> (type, messages recovered), over all files."""
        out: dict[str, tuple[str, int]] = {}
        for f in self.files:
            for t in f.topics.values():
                _, n = out.get(t.topic, (t.msgtype, 0))
                out[t.topic] = (t.msgtype, n + t.count)
        return out


def storage_files(bag: Path) -> list[Path]:
    """The bag's MCAP files (a damaged original kept as *.mcap.damaged is not one)."""
    if not bag.is_dir():
        raise ConfigError(f"bag {bag} does not exist or is not a directory")
    files = sorted(p for p in bag.iterdir() if p.suffix == ".mcap" and p.is_file())
    if not files:
        if any(p.suffix == ".db3" for p in bag.iterdir()):
            raise ConfigError(f"{bag} is a sqlite3 bag; reindex it with `ros2 bag reindex {bag} -s sqlite3`")
        raise ConfigError(f"{bag} holds no .mcap file: nothing to reindex")
    return files


def reindex_bag(bag: str | Path, version: int = 9) -> ReindexResult:
    """Rebuild `bag`/metadata.yaml from its MCAP files, rewriting any file that was not closed cleanly."""
    bag = Path(bag)
    recoveries = []
    for path in storage_files(bag):
        rec = recover_file(path)
        if not rec.scan.complete:
            rewrite_file(rec)
        recoveries.append(rec)
    atomic_write_text(bag / "metadata.yaml", metadata_yaml(recoveries, version))
    return ReindexResult(bag, recoveries)


def metadata_yaml(files: list[FileRecovery], version: int = 9) -> str:
    """rosbag2's metadata.yaml (as rosbags writes it) for the recovered files."""
    dump_qos = dump_qos_v9 if version >= 9 else dump_qos_v8
    topics: dict[tuple[str, str], dict] = {}
    for f in files:
        for t in f.topics.values():
            entry = topics.setdefault((t.topic, t.msgtype), {
                "topic_metadata": {"name": t.topic, "type": t.msgtype, "serialization_format": t.encoding,
                                   "offered_qos_profiles": dump_qos(parse_qos(t.qos_yaml)),
                                   "type_description_hash": t.type_hash},
                "message_count": 0})
            entry["message_count"] += t.count
    start = min((f.start_ns for f in files if f.messages), default=0)
    end = max((f.end_ns for f in files if f.messages), default=0)
    info = {
        "version": version, "storage_identifier": "mcap",
        "relative_file_paths": [f.path.name for f in files],
        "duration": {"nanoseconds": max(0, end - start)},
        "starting_time": {"nanoseconds_since_epoch": start},
        "message_count": sum(f.messages for f in files),
        "topics_with_message_count": list(topics.values()),
        "compression_format": "", "compression_mode": "",
        "files": [{"path": f.path.name, "starting_time": {"nanoseconds_since_epoch": f.start_ns if f.messages else 0},
                   "duration": {"nanoseconds": max(0, f.end_ns - f.start_ns)}, "message_count": f.messages}
                  for f in files],
        "custom_data": None, "ros_distro": "rosbags",
    }
    yaml = YAML(typ="safe")
    yaml.default_flow_style = False
    text = io.StringIO()
    yaml.dump({"rosbag2_bagfile_information": info}, text)
    return text.getvalue()
