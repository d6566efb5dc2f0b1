"""comma2k19 (comma.ai, MIT licence): routes of one-minute segments, each a folder (`.../<route>/<n>/`)
holding `video.hevc` (raw HEVC, 20 Hz), `global_pose/frame_times` (frame i's time) and the CAN logs
`processed_log/CAN/steering_angle/{t,value}` (steering-wheel degrees) and `processed_log/CAN/speed/{t,value}`
(m/s), numpy files without the `.npy` extension. The folder names are `global_pose` and `speed`, not the
`global_pos` and `car_speed` of the data set's own README.

A source is a segment, a route (its segments read as one drive, in number order) or a folder of routes
(a drive each). Times are seconds since the device booted, not Unix time: consecutive segments of a route
continue one clock, and a missing segment leaves a gap that splits the drive. Steering (degrees, stored
as radians, sign as recorded: openpilot counts positive to the left, as steer does) and speed are
interpolated onto the frame times; a frame up to `EDGE_S` beyond the CAN log takes its nearest value
(the first frame usually comes 30-40 ms before the first CAN row), farther ones are left out and
counted. The video is decoded with PyAV; with `signals_only` it is not needed.
"""
from __future__ import annotations

from collections import Counter
from functools import partial
from pathlib import Path

import numpy as np

from steer.data.drive import Signal
from steer.sources.images import BadImage, fit
from steer.sources.registry import Option, Reader, Where
from steer.sources.table import FrameTable

FRAME_TIMES = Path("global_pose", "frame_times")
CAN = Path("processed_log", "CAN")
EDGE_S = 0.1


def segments(route: Path) -> list[Path]:
    """A route's segment folders in number order (a segment alone is its own route)."""
    if (route / FRAME_TIMES).exists():
        return [route]
    found = sorted((p for p in route.iterdir() if p.name.isdigit() and (p / FRAME_TIMES).exists()),
                   key=lambda p: int(p.name))
    if not found:
        raise FileNotFoundError(f"{route}: no comma2k19 segment (a folder with {FRAME_TIMES})")
    return found


def _load(path: Path) -> np.ndarray:
    try:
        with path.open("rb") as f:
            return np.load(f, allow_pickle=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: missing (every comma2k19 segment has it)") from None
    except ValueError as error:
        raise ValueError(f"{path}: not a numpy array ({error})") from None


def _can(segment_folders: list[Path], name: str) -> tuple[np.ndarray, np.ndarray]:
    """One CAN signal of all segments, merged in time order (a segment's log may overlap the next's)."""
    times, values = [], []
    for segment in segment_folders:
        t = _load(segment / CAN / name / "t").astype(np.float64).ravel()
        back = np.flatnonzero(np.diff(t) <= 0)
        if len(back):
            raise ValueError(f"{segment / CAN / name / 't'} row {back[0] + 1}: time does not increase")
        times.append(t)
        values.append(_load(segment / CAN / name / "value").reshape(len(t), -1)[:, 0].astype(np.float64))
    t, v = np.concatenate(times), np.concatenate(values)
    order = np.argsort(t, kind="stable")
    first = np.diff(t[order], prepend=-np.inf) > 0  # of rows at the same time, the earlier segment's
    return t[order][first], v[order][first]


def read_route(route: Path, signals_only: bool = False) -> FrameTable:
    folders = segments(route)
    frame_times = [_load(s / FRAME_TIMES).astype(np.float64).ravel() for s in folders]
    where = [Where(s / FRAME_TIMES, i, "frame") for s, t in zip(folders, frame_times) for i in range(len(t))]
    times = np.concatenate(frame_times)
    steering_t, steering = _can(folders, "steering_angle")
    speed_t, speed = _can(folders, "speed")
    lo, hi = max(steering_t[0], speed_t[0]) - EDGE_S, min(steering_t[-1], speed_t[-1]) + EDGE_S
    keep = (times >= lo) & (times <= hi)
    dropped = +Counter({f"frames more than {EDGE_S} s outside the CAN log": int((~keep).sum())})  # + drops a 0
    videos = [s / "video.hevc" for s in folders]
    if not signals_only:
        absent = next((v for v in videos if not v.exists()), None)
        if absent:
            raise FileNotFoundError(f"{absent}: no video; import the logs alone with --signals-only")
    counts = [len(t) for t in frame_times]
    t = times[keep]
    signals = {"steering": Signal(np.radians(np.interp(t, steering_t, steering)), "rad"),
               "speed": Signal(np.interp(t, speed_t, speed), "m/s")}
    name = f"{route.parent.name}-{route.name}" if folders == [route] else route.name  # a segment alone: route-n
    return FrameTable(name.replace("|", "_"), [], t, signals, [w for w, k in zip(where, keep) if k], dropped,
                      video_frames=None if signals_only else np.flatnonzero(keep),
                      decode=None if signals_only else partial(decode_videos, videos, counts))


def decode_videos(videos: list[Path], counts: list[int], wanted: np.ndarray, size: tuple[int, int],
                  crop: tuple[float, float], threads: int | None = None) -> np.ndarray:
    """Frames numbered `wanted` (counting through the segments' videos, `counts[k]` frames in video k; all
    of each video's must be there), cropped and resized, on `threads` of FFmpeg's decoding threads."""
    import av

    keep = np.zeros(sum(counts), bool)
    keep[wanted] = True
    out = np.empty((len(wanted), *size, 3), np.uint8)
    row, first = 0, 0
    for video, count in zip(videos, counts):
        got = 0
        try:
            with av.open(str(video)) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"  # FFmpeg's frame threads: HEVC at 1164x874 is slow on one
                stream.thread_count = threads or 0
                for frame in container.decode(stream):
                    if got == count:
                        break
                    if keep[first + got]:
                        fit(frame.to_ndarray(format="rgb24"), size, crop, out[row])
                        row += 1
                    got += 1
        except (av.error.FFmpegError, IndexError) as error:  # IndexError: no video stream
            raise BadImage(f"{video}: cannot decode frame {got} ({error})") from None
        if got < count:
            raise BadImage(f"{video}: the video breaks off at frame {got}; its frame_times go on to frame {count - 1}")
        first += count
    return out


def read(source: str | Path, signals_only: bool = False) -> list[FrameTable]:
    """One table per route: `source` is a segment, a route or a folder of routes."""
    source = Path(source)
    if (source / FRAME_TIMES).exists() or any((p / FRAME_TIMES).exists() for p in source.iterdir()):
        return [read_route(source, signals_only)]
    routes = sorted(p for p in source.iterdir() if p.is_dir() and any((s / FRAME_TIMES).exists() for s in p.iterdir()))
    if not routes:
        raise FileNotFoundError(f"{source}: no comma2k19 segment (a folder with {FRAME_TIMES}) in it or below it")
    return [read_route(route, signals_only) for route in routes]


def _recognise(path: Path) -> bool:
    return path.is_dir() and any(any(path.glob(pattern)) for pattern in
                                 (str(FRAME_TIMES), f"*/{FRAME_TIMES}", f"*/*/{FRAME_TIMES}"))


READER = Reader(
    "comma2k19", "comma2k19: a segment, a route of segments or a folder of routes (video.hevc, global_pose, CAN)",
    _recognise, read, (Option("signals_only", bool, "the logs without images or video, as drives without frames"),))
