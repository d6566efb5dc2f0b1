"""Decoding camera images and videos into the cache's frame size: JPEG with simplejpeg (the fastest
decoder measured here), other images and videos through OpenCV, resizing with OpenCV's area filter."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import cv2
import numpy as np
import simplejpeg


class BadImage(ValueError):
    pass


def read_image(path: Path) -> np.ndarray:
    """RGB uint8 (H, W, 3) at the image's own size. Raises BadImage naming the file."""
    return decode_bytes(Path(path).read_bytes(), path)


def decode_bytes(data: bytes, path: Path, pixels: np.ndarray | None = None) -> np.ndarray:
    """RGB uint8 (H, W, 3) of the contents of the image file `path`; a JPEG is decoded into `pixels`
    (uint8, any shape) where that is large enough. Raises BadImage naming the file."""
    if not data:
        raise BadImage(f"{path}: empty file (0 bytes)")
    try:
        if data[:2] == b"\xff\xd8":
            height, width = simplejpeg.decode_jpeg_header(data)[:2]
            fits = pixels is not None and pixels.size >= height * width * 3
            return simplejpeg.decode_jpeg(data, colorspace="RGB", buffer=pixels if fits else None)
        decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if decoded is None:
            raise ValueError("not a readable image")
        return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
    except ValueError as e:
        raise BadImage(f"{path}: cannot decode ({e})") from None


def image_size(path: Path) -> tuple[int, int]:
    """(height, width) of an image file, from a JPEG's header alone. Raises BadImage naming the file."""
    data = Path(path).read_bytes()
    if data[:2] == b"\xff\xd8":
        try:
            return tuple(simplejpeg.decode_jpeg_header(data)[:2])
        except ValueError as e:
            raise BadImage(f"{path}: cannot decode ({e})") from None
    return decode_bytes(data, path).shape[:2]


ASPECT_TOLERANCE = 0.05  # aspect ratios further apart than this (relative) are a stretch worth a word


def cropped_height(shape: tuple[int, int], crop: tuple[float, float]) -> int:
    """Rows of an image of `shape` (height, width) left after `crop`, as `fit` cuts them."""
    return shape[0] - int(round(crop[0] * shape[0])) - int(round(crop[1] * shape[0]))


def aspect_size(shape: tuple[int, int], crop: tuple[float, float], height: int) -> tuple[int, int]:
    """The size `height` rows high of the aspect of images of `shape`, cropped."""
    return height, max(8, int(round(height * shape[1] / cropped_height(shape, crop))))


def aspect_mismatch(shape: tuple[int, int], crop: tuple[float, float], size: tuple[int, int]) -> str | None:
    """Why images of `shape` (height, width), cropped, would be stretched into `size`, or None where they fit."""
    height = cropped_height(shape, crop)
    ratio = (size[0] / size[1]) / (height / shape[1])
    if abs(ratio - 1) <= ASPECT_TOLERANCE:
        return None
    keep = aspect_size(shape, crop, size[0])
    return (f"its images of {shape[1]}x{shape[0]} pixels, {height} high after the crop, would be stretched "
            f"{ratio if ratio > 1 else 1 / ratio:.2f}x {'taller' if ratio > 1 else 'wider'} to {size[0]}x{size[1]}; "
            f"give a size of their aspect (e.g. --size {keep[0]}x{keep[1]}), or --stretch to stretch them")


def fit(image: np.ndarray, size: tuple[int, int], crop: tuple[float, float],
        out: np.ndarray | None = None) -> np.ndarray:
    """Crop fractions of the height from the top and bottom (sky, bonnet), then resize to (height, width),
    into `out` (uint8 (height, width, 3)) where given."""
    height = image.shape[0]
    image = image[int(round(crop[0] * height)): height - int(round(crop[1] * height))]
    return cv2.resize(image, (size[1], size[0]), dst=out, interpolation=cv2.INTER_AREA)


def pixel_buffer(size: int) -> np.ndarray:
    """`size` uint8 for a JPEG decoder's output, 8 bytes off 64-byte alignment on purpose: libjpeg-turbo
    writes aligned rows with non-temporal stores, which bypass the cache, so the resize after it would
    read them back from memory (a whole decode and resize 1.4x slower on donkey frames, measured)."""
    raw = np.empty(size + 72, np.uint8)
    start = (-raw.ctypes.data) % 64 + 8
    return raw[start:start + size]


def decode_into_file(path: Path, offset: int, images: list[str], size: tuple[int, int], crop: tuple[float, float],
                     shape: tuple[int, int], resize_odd: bool = False) -> tuple[list[bytes], int]:
    """Decode `images` into consecutive (3, H, W) uint8 frames of the file `path` from byte `offset` on,
    reading each file once for its sha256 too; returns the digests and how many images were not
    `shape` (height, width): those are refused unless `resize_odd`. Raises BadImage naming the file."""
    frame, pixels = np.empty((3, *size), np.uint8), np.empty(0, np.uint8)  # reused: new ones cost page faults
    planes, resized = list(frame), np.empty((*size, 3), np.uint8)
    digests, odd = [], 0
    fd = os.open(path, os.O_WRONLY)
    try:
        for i, image in enumerate(images):
            with open(image, "rb") as f:
                data = f.read()
            digests.append(hashlib.sha256(data).digest())
            decoded = decode_bytes(data, image, pixels)
            if decoded.shape[:2] != tuple(shape):
                if not resize_odd:
                    raise BadImage(f"{image}: {decoded.shape[1]}x{decoded.shape[0]} pixels where the first frame "
                                   f"of its drive has {shape[1]}x{shape[0]}; give --odd-frames resize to resize "
                                   f"such frames too (they are counted)")
                odd += 1
            if decoded.size > pixels.size:  # the first image, or a larger one: the next ones reuse this
                pixels = pixel_buffer(decoded.size)
            cv2.split(fit(decoded, size, crop, resized), planes)
            os.pwrite(fd, frame, offset + i * frame.nbytes)  # into the page cache: no fault per page
    finally:
        os.close(fd)
    return digests, odd


def decode_video(path: Path, indices: np.ndarray, size: tuple[int, int], crop: tuple[float, float]) -> np.ndarray:
    """Frames number `indices` (0-based, increasing) of a video, read in one pass. A video that ends
    before the last wanted frame raises BadImage naming the frame where it broke."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise BadImage(f"{path}: cannot open the video")
    out = np.empty((len(indices), *size, 3), np.uint8)
    row_of = {int(frame): row for row, frame in enumerate(indices)}
    try:
        for frame in range(int(indices[-1]) + 1):
            ok, bgr = capture.read()
            if not ok:
                raise BadImage(f"{path}: the video breaks off at frame {frame}; the log goes on to frame "
                               f"{int(indices[-1])}")
            if frame in row_of:
                out[row_of[frame]] = fit(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), size, crop)
    finally:
        capture.release()
    return out
