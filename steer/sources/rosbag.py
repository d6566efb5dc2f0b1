"""ROS bags, read with `rosbags` (no ROS install): ROS 1 `.bag` files (Udacity Challenge 2 and any bag
with its message types) and ROS 2 bags (a folder with `metadata.yaml`, or a bare `.db3` or `.mcap`).

A source is one bag or a folder of bags of one drive, read as one drive in time order. The frames are
one camera's messages (`/center_camera/image_color/compressed`, or the raw `/center_camera/image_color`;
left and right alike, or `camera_topic`), at their header stamps. Dataspeed's drive-by-wire reports are
interpolated onto the frame times: `/vehicle/steering_report` gives steering (steering-wheel angle, rad,
positive = left), torque (N·m) and speed (m/s); `/vehicle/throttle_report` and `/vehicle/brake_report`
give throttle and brake (the driver's pedal, `pedal_input`, as recorded), where the bag has them. Frames
outside the time span of any report are left out and counted. In Udacity's `2016-10-25*` bags the left
and centre camera topics hold each other's images: `swap_left_center` reads them the right way round.
"""
from __future__ import annotations

import mmap
from collections import Counter
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from steer.data.drive import Signal
from steer.sources.images import decode_bytes, fit, pixel_buffer
from steer.sources.registry import Option, Reader, Where
from steer.sources.table import MIN_FRAMES_PER_PROCESS, FrameTable
from steer.workers import CORES, pool

SUFFIXES = (".bag", ".db3", ".mcap")
# topic: {steer's name: (field, unit)}
REPORTS = {"/vehicle/steering_report": {"steering": ("steering_wheel_angle", "rad"),
                                        "torque": ("steering_wheel_torque", "N*m"), "speed": ("speed", "m/s")},
           "/vehicle/throttle_report": {"throttle": ("pedal_input", "1")},
           "/vehicle/brake_report": {"brake": ("pedal_input", "1")}}
REQUIRED = "/vehicle/steering_report"
# ROS raw image encodings: OpenCV's conversion to RGB (OpenCV names a Bayer pattern by its second row)
RAW = {"rgb8": None, "bgr8": cv2.COLOR_BGR2RGB, "mono8": cv2.COLOR_GRAY2RGB, "bayer_rggb8": cv2.COLOR_BayerBG2RGB,
       "bayer_bggr8": cv2.COLOR_BayerRG2RGB, "bayer_gbrg8": cv2.COLOR_BayerGR2RGB, "bayer_grbg8": cv2.COLOR_BayerGB2RGB}


def bags(source: Path) -> list[Path]:
    """The bag files (or the ROS 2 bag folder) of a source, in name order."""
    if source.is_file() or (source / "metadata.yaml").exists():
        return [source]
    found = sorted(p for suffix in SUFFIXES for p in source.glob(f"*{suffix}"))
    if not found:
        raise FileNotFoundError(f"{source}: no ROS bag (.bag, .db3, .mcap or a folder with metadata.yaml)")
    return found


def _errors() -> tuple[type[Exception], ...]:
    """What rosbags raises on a bag it cannot read."""
    from rosbags.highlevel import AnyReaderError
    from rosbags.rosbag1 import ReaderError as Reader1Error
    from rosbags.rosbag2 import ReaderError as Reader2Error
    from rosbags.serde import SerdeError

    return AnyReaderError, Reader1Error, Reader2Error, SerdeError


def _refuse(where: Path | Where, error: Exception) -> ValueError:
    hint = " (reindex it with ROS's `rosbag reindex`)" if "not indexed" in str(error) else ""
    return ValueError(f"{where}: cannot read the bag: {error}{hint}")


def _open(paths: list[Path]):
    """An open AnyReader over the bags; a bag it cannot read (unindexed, compressed other than bz2 or
    lz4, truncated, not a bag) is named with rosbags' reason."""
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    for path in paths:  # one at a time first, so that an error names its bag
        try:
            with AnyReader([path], default_typestore=get_typestore(Stores.LATEST)):
                pass
        except _errors() as error:
            raise _refuse(path, error) from None
    reader = AnyReader(paths, default_typestore=get_typestore(Stores.LATEST))
    reader.open()
    return reader


def _stamp(message) -> int:
    return message.header.stamp.sec * 1_000_000_000 + message.header.stamp.nanosec


def _camera_topic(reader, paths: list[Path], camera: str, camera_topic: str | None, swap: bool) -> str:
    if swap and camera in ("left", "center"):
        camera = {"left": "center", "center": "left"}[camera]
    wanted = [camera_topic] if camera_topic else [f"/{camera}_camera/image_color/compressed",
                                                  f"/{camera}_camera/image_color"]
    topics = {c.topic for c in reader.connections}
    found = next((t for t in wanted if t in topics), None)
    if found is None:
        raise ValueError(f"{', '.join(map(str, paths))}: no camera topic {' or '.join(wanted)}; "
                         f"the bag has {sorted(topics)}")
    return found


def _bag_file(connection) -> Path:
    """The file a message came from: a ROS 2 bag folder's metadata.yaml, which the import hashes."""
    path = Path(connection.owner.path)
    return path / "metadata.yaml" if path.is_dir() else path


def _messages(reader, topic: str, numbers: np.ndarray | None = None):
    """(where, message) of the messages on `topic` (those numbered `numbers`, increasing, of all the
    bags' messages on it), in time order; `where` numbers them from 0 within their bag. Messages
    passed over are not deserialized."""
    connections = [c for c in reader.connections if c.topic == topic]
    unknown = next((c for c in connections if c.msgtype not in reader.typestore.fielddefs), None)
    if unknown:  # a ROS 2 bag older than Iron carries no definitions, and rosbags knows no dbw_mkz_msgs
        raise ValueError(f"{_bag_file(unknown)}: {topic} holds {unknown.msgtype}, which the bag does not define")
    counts: Counter = Counter()
    bag, j = _bag_file(connections[0]), 0
    try:
        for k, (connection, _, raw) in enumerate(reader.messages(connections=connections)):
            bag = _bag_file(connection)
            counts[bag] += 1
            if numbers is not None:
                if j == len(numbers):
                    return
                if numbers[j] != k:
                    continue
                j += 1
            yield Where(bag, counts[bag] - 1, f"{topic} message"), reader.deserialize(raw, connection.msgtype)
    except _errors() as error:  # the message after the last one read
        raise _refuse(Where(bag, counts[bag], f"{topic} message"), error) from None


def _report(reader, paths: list[Path], topic: str, fields: dict[str, tuple[str, str]]):
    """A report topic's stamps (ns) and its fields' values, or None where the bag has no such topic."""
    if not any(c.topic == topic for c in reader.connections):
        if topic == REQUIRED:
            raise ValueError(f"{', '.join(map(str, paths))}: no topic {topic}; give a bag with Dataspeed's "
                             f"drive-by-wire reports (Udacity's), or use --format generic on an export")
        return None
    where, stamps, values = [], [], []
    for w, message in _messages(reader, topic):
        where.append(w)
        stamps.append(_stamp(message))
        values.append([float(getattr(message, name)) for name, _ in fields.values()])
    stamps = np.array(stamps, dtype=np.int64)
    back = np.flatnonzero(np.diff(stamps) <= 0)
    if len(back):
        raise ValueError(f"{where[back[0] + 1]}: its header stamp does not come after the message before's")
    return stamps, np.array(values, dtype=np.float64).reshape(len(stamps), -1)


def read(source: str | Path, camera: str = "center", camera_topic: str | None = None,
         swap_left_center: bool = False) -> FrameTable:
    source = Path(source)
    paths = bags(source)
    reader = _open(paths)
    try:
        topic = _camera_topic(reader, paths, camera, camera_topic, swap_left_center)
        where, stamps = [], []
        for w, message in _messages(reader, topic):
            where.append(w)
            stamps.append(_stamp(message))
        reports = {t: _report(reader, paths, t, fields) for t, fields in REPORTS.items()}
    finally:
        reader.close()
    frame_ns = np.array(stamps, dtype=np.int64)
    reports = {t: r for t, r in reports.items() if r is not None}
    inside = np.ones(len(frame_ns), bool)
    for report_ns, _ in reports.values():
        inside &= (frame_ns >= report_ns[0]) & (frame_ns <= report_ns[-1])
    dropped = Counter({"frames outside the time span of the reports": int((~inside).sum())} if not inside.all() else {})
    times = frame_ns[inside]
    signals = {}
    for t, (report_ns, values) in reports.items():
        for column, (name, (_, unit)) in enumerate(REPORTS[t].items()):
            # relative to the first frame: nanoseconds since 1970 as float64 lose ~0.2 us, the interpolation none
            signals[name] = Signal(np.interp(times - times[:1], report_ns - times[:1], values[:, column])
                                   if len(times) else np.empty(0), unit)
    rows = [w for w, keep in zip(where, inside) if keep]
    return FrameTable(f"{source.stem}-{camera}", [], times / 1e9, signals, rows, dropped,
                      video_frames=np.flatnonzero(inside), decode=partial(decode_frames, paths, topic))


def decode_frames(paths: list[Path], topic: str, wanted: np.ndarray, size: tuple[int, int],
                  crop: tuple[float, float], processes: int | None = None) -> np.ndarray:
    """The camera messages numbered `wanted` (increasing, counting all the bags' messages on `topic`),
    cropped and resized, (frames, H, W, 3) uint8: in equal runs of messages on `processes` forked
    processes, each reading the bags itself and decoding its run straight into memory the processes
    share (the frames are not sent back)."""
    global _out
    nbytes = len(wanted) * 3 * size[0] * size[1]
    _out = np.frombuffer(mmap.mmap(-1, max(nbytes, 1)), np.uint8)[:nbytes].reshape(len(wanted), *size, 3)
    workers = max(1, min(processes or CORES, len(wanted) // MIN_FRAMES_PER_PROCESS))
    parts = np.array_split(wanted, workers)
    runs = [(paths, topic, part, sum(map(len, parts[:i])), size, crop) for i, part in enumerate(parts)]
    try:
        if workers == 1:
            _decode_run(*runs[0])
        else:
            with pool(workers) as decoders:
                decoders.starmap(_decode_run, runs, chunksize=1)
        return _out
    finally:
        _out = None


_out: np.ndarray | None = None  # decode_frames' output: forked processes inherit it, and write into it


def _decode_run(paths: list[Path], topic: str, numbers: np.ndarray, first_row: int, size: tuple[int, int],
                crop: tuple[float, float]) -> None:
    """Decode the camera messages numbered `numbers` into `_out` from row `first_row` on."""
    reader, pixels = _open(paths), np.empty(0, np.uint8)  # reused: a new one per frame costs page faults
    try:
        for row, (where, message) in enumerate(_messages(reader, topic, numbers), first_row):
            image = _pixels(message, where, pixels)
            if image.size > pixels.size:  # the first frame: the next ones decode into this
                pixels = pixel_buffer(image.size)
            fit(image, size, crop, _out[row])
    finally:
        reader.close()


def _pixels(message, where: Where, pixels: np.ndarray) -> np.ndarray:
    """RGB uint8 of a CompressedImage (JPEG into `pixels` where large enough, or PNG) or a raw Image message."""
    if hasattr(message, "format"):  # CompressedImage
        return decode_bytes(message.data.tobytes(), where, pixels)
    if message.encoding not in RAW:
        raise ValueError(f"{where}: image encoding {message.encoding!r} is not one of {sorted(RAW)}")
    channels = 1 if message.encoding.startswith(("mono", "bayer")) else 3
    pixels = message.data.reshape(message.height, message.step)[:, :message.width * channels]
    pixels = pixels.reshape(message.height, message.width, channels)
    code = RAW[message.encoding]
    return np.ascontiguousarray(pixels) if code is None else cv2.cvtColor(np.ascontiguousarray(pixels), code)


def _recognise(path: Path) -> bool:
    if path.is_file():
        return path.suffix in SUFFIXES
    return (path / "metadata.yaml").exists() or any(any(path.glob(f"*{s}")) for s in SUFFIXES)


READER = Reader(
    "rosbag", "ROS 1 bags (Udacity Challenge 2) and ROS 2 bags (sqlite3, MCAP): a bag or a folder of one drive's",
    _recognise, read,
    (Option("camera", str, "which camera's rows to read (default center)", ("center", "left", "right")),
     Option("camera_topic", str, "the camera's topic, where it is not /CAMERA_camera/image_color[/compressed]"),
     Option("swap_left_center", bool, "the left and centre camera topics hold each other's images "
                                      "(Udacity's 2016-10-25 bags)")))
