"""An overlay video of a model driving: each frame enlarged, the true (green) and predicted (red)
steering wheel drawn over it, bars for speed and throttle, and the running RMSE of the steering."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Callable

import av
import cv2
import numpy as np

from steer.durable import replacing

TRUE, PRED, TEXT = (80, 200, 80), (60, 60, 230), (255, 255, 255)  # BGR


def _wheel(image: np.ndarray, centre: tuple[int, int], radius: int, angle_rad: float, colour) -> None:
    """A steering wheel turned by `angle_rad` (positive = left, counter-clockwise on screen)."""
    cv2.circle(image, centre, radius, colour, 2, cv2.LINE_AA)
    for spoke in (0.0, 2.0944, -2.0944):  # three spokes, one straight up when the wheel is straight
        a = angle_rad + spoke
        tip = (int(centre[0] - radius * np.sin(a)), int(centre[1] - radius * np.cos(a)))
        cv2.line(image, centre, tip, colour, 2, cv2.LINE_AA)


def _bar(image: np.ndarray, origin: tuple[int, int], label: str, truth: float, pred: float, full: float) -> None:
    x, y = origin
    cv2.putText(image, label, (x, y - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, TEXT, 1, cv2.LINE_AA)
    for row, (value, colour) in enumerate(((truth, TRUE), (pred, PRED))):
        length = int(np.clip(value / full, 0, 1) * 120)
        cv2.rectangle(image, (x, y + 8 * row), (x + length, y + 8 * row + 6), colour, -1)


def overlay_frame(frame: np.ndarray, truth: dict[str, float], pred: dict[str, float], rmse: float,
                  wheel_scale: float, scale: int = 3) -> np.ndarray:
    """One BGR frame: `frame` (H, W, 3 RGB) enlarged `scale` times with the drawings over it."""
    image = cv2.resize(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), None, fx=scale, fy=scale,
                       interpolation=cv2.INTER_NEAREST)
    h, w = image.shape[:2]
    radius = max(h // 6, 12)
    if "steering" in truth:
        centre = (w - radius - 14, h - radius - 14)
        _wheel(image, centre, radius + 5, truth["steering"] * wheel_scale, TRUE)  # the outer wheel
        _wheel(image, centre, radius, pred["steering"] * wheel_scale, PRED)
        cv2.putText(image, f"steering rmse so far {rmse:.3f}", (10, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.45, TEXT, 1,
                    cv2.LINE_AA)
    bars = [(name, full) for name, full in (("speed", 30.0), ("throttle", 1.0)) if name in truth]
    for i, (name, full) in enumerate(bars):
        _bar(image, (10, h - 30 * (len(bars) - i)), name, truth[name], pred[name], full)
    return image


# libvpx's real-time mode: 2.5 ms a 600x198 frame on the EPYC, where OpenCV's VP8 writer took 14.8 and
# libvpx's default mode 9.9, files of about the same size (bench/video.py)
VP8 = {"deadline": "realtime", "cpu-used": "6"}


class _Video:
    """A video written frame by frame through PyAV (FFmpeg): WebM (VP8, which browsers play) or MP4
    (MPEG-4 part 2) by `path`'s suffix, for BGR images like `image` (padded to even sides, as 4:2:0 needs);
    `vp8`: libvpx's options for WebM."""

    def __init__(self, path: Path, tmp: Path, fps: float, image: np.ndarray, vp8: dict[str, str] = VP8):
        webm = path.suffix == ".webm"
        if not tmp.parent.is_dir():  # FFmpeg would say so only at the first frame, without the name
            raise OSError(f"{path}: cannot open a video writer on {tmp}: there is no folder {tmp.parent}")
        self.file = av.open(str(tmp), "w", format="webm" if webm else "mp4")
        self.stream = self.file.add_stream("libvpx" if webm else "mpeg4", rate=Fraction(fps).limit_denominator(1001),
                                           options=vp8 if webm else {})
        self.stream.height, self.stream.width = (side + side % 2 for side in image.shape[:2])
        self.stream.pix_fmt, self.stream.bit_rate = "yuv420p", 1_500_000
        # one encoder thread: FFmpeg's automatic count ran libvpx 7x slower (23 against 3.3 ms a frame) while
        # the other core was busy, as it is when the closed loop's workers or a training run share the machine
        self.stream.codec_context.thread_count = 1

    def write(self, image: np.ndarray) -> None:
        h, w = image.shape[:2]
        padded = np.pad(image, ((0, h % 2), (0, w % 2), (0, 0))) if h % 2 or w % 2 else image
        self.file.mux(self.stream.encode(av.VideoFrame.from_ndarray(padded, format="bgr24")))

    def release(self) -> None:
        self.file.mux(self.stream.encode())  # what the encoder still holds
        self.file.close()


def write_overlay(path: str | Path, frames: np.ndarray, times_s: np.ndarray, truth: np.ndarray, preds: np.ndarray,
                  targets: list[str], steering_unit: str, still: str | Path | None = None) -> None:
    """MP4 of `frames` (N, C, H, W) at their own rate; `still`, if given, gets a PNG of the middle frame."""
    fps = 1.0 / float(np.median(np.diff(times_s))) if len(times_s) > 1 else 20.0
    wheel_scale = 1.0 if steering_unit == "rad" else np.pi / 2  # normalised -1..1 drawn as a quarter turn
    k = targets.index("steering") if "steering" in targets else None
    squared = np.cumsum((preds[:, k] - truth[:, k]) ** 2) if k is not None else np.zeros(len(frames))

    def draw(i: int) -> np.ndarray:
        return overlay_frame(np.asarray(frames[i]).transpose(1, 2, 0), dict(zip(targets, truth[i])),
                             dict(zip(targets, preds[i])), float(np.sqrt(squared[i] / (i + 1))), wheel_scale)
    write_drawn(path, len(frames), draw, fps, still)


INSET_PX, INSET_M = 150, 80.0  # the top-down inset: its side in pixels and in metres
ROAD, LANE, PATH, TAKEOVER = (90, 90, 90), (200, 200, 200), (60, 60, 230), (0, 220, 255)  # BGR


def _inset(run, i: int) -> np.ndarray:
    """Top-down, north up, centred on the car at frame i: the lane centre, the path driven so far and the
    take-overs (yellow crosses)."""
    image = np.full((INSET_PX, INSET_PX, 3), 40, np.uint8)
    centre, scale = np.array([run.x_m[i], run.y_m[i]]), INSET_PX / INSET_M

    def pixels(xy: np.ndarray) -> np.ndarray:
        p = (xy - centre) * scale * np.array([1, -1]) + INSET_PX / 2
        return p.round().astype(np.int32).reshape(-1, 1, 2)

    near = np.abs(run.road_xy - centre).max(axis=1) < INSET_M
    cv2.polylines(image, [pixels(run.road_xy[near])], False, ROAD, max(int(3.6 * scale), 1))  # the lane
    cv2.polylines(image, [pixels(run.road_xy[near])], False, LANE, 1, cv2.LINE_AA)
    driven = np.column_stack([run.x_m[: i + 1], run.y_m[: i + 1]])
    for piece in np.split(driven, [t for t in run.takeovers if t <= i]):  # no line across a take-over's jump
        if len(piece) > 1:
            cv2.polylines(image, [pixels(piece)], False, PATH, 1, cv2.LINE_AA)
    for t in (t for t in run.takeovers if t <= i):
        cv2.drawMarker(image, tuple(int(v) for v in pixels(driven[t])[0, 0]), TAKEOVER, cv2.MARKER_TILTED_CROSS, 8, 2)
    cv2.circle(image, tuple(int(v) for v in pixels(centre)[0, 0]), 3, TEXT, -1)
    return image


def closed_loop_frame(run, i: int, scale: int = 3) -> np.ndarray:
    """One BGR frame of a closed-loop drive: what the car's camera saw, the wheel in force (green, outer) and
    the one the hands asked for (red, inner), lateral offset and take-overs so far, and the inset."""
    image = cv2.resize(cv2.cvtColor(run.frames[i], cv2.COLOR_RGB2BGR), None, fx=scale, fy=scale,
                       interpolation=cv2.INTER_NEAREST)
    h, w = image.shape[:2]
    radius = max(h // 6, 12)
    centre = (radius + 20, h - radius - 14)
    _wheel(image, centre, radius + 5, run.wheel_rad[i], TRUE)
    _wheel(image, centre, radius, run.commanded_rad[i], PRED)
    taken = sum(t <= i for t in run.takeovers)
    cv2.putText(image, f"t {i * run.dt_s:5.1f} s  lateral {run.lateral_m[i]:+.2f} m  take-overs {taken}", (10, 18),
                cv2.FONT_HERSHEY_SIMPLEX, 0.45, TEXT, 1, cv2.LINE_AA)
    inset = _inset(run, i)
    side = min(INSET_PX, h)
    image[:side, w - side:] = cv2.resize(inset, (side, side)) if side != INSET_PX else inset
    return image


def write_closed_loop(path: str | Path, run) -> None:
    """MP4 (or WebM, by the suffix) of a closed-loop drive (steer.drive.closed_loop.RoadRun kept with
    its frames); a PNG still of the middle frame beside it."""
    path = Path(path)
    write_drawn(path, len(run.frames), lambda i: closed_loop_frame(run, i), 1 / run.dt_s, path.with_suffix(".png"))


def write_drawn(path: str | Path, count: int, draw: Callable[[int], np.ndarray], fps: float,
                still: str | Path | None) -> None:
    """MP4 (or WebM, by the suffix) of the images `draw(0)` .. `draw(count - 1)`; a PNG of the middle one at
    `still` (None: none)."""
    path = Path(path)
    if not count:
        raise ValueError(f"{path}: no frames to draw")
    with replacing(path) as tmp:
        writer = None
        for i in range(count):
            image = draw(i)
            if writer is None:
                writer = _Video(path, tmp, fps, image)
            writer.write(image)
            if still is not None and i == count // 2:
                with replacing(still) as png:
                    cv2.imwrite(str(png), image)
        writer.release()
