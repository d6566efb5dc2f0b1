"""`steer run`: a checkpoint frame by frame over a video, images, a drive or a camera."""
from __future__ import annotations

import argparse
import json

from steer.cli.common import crop
from steer.errors import SteerError

HELP = "run a checkpoint frame by frame over a video, images, a drive or a camera"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="a checkpoint folder, e.g. RUN/best")
    p.add_argument("--video", help="a video file")
    p.add_argument("--images", help="a folder of images, in name order")
    p.add_argument("--drive", help="a drive of the frame cache given by --cache")
    p.add_argument("--cache")
    p.add_argument("--camera", type=int, help="an OpenCV camera index, e.g. 0")
    p.add_argument("--fps", type=float, help="the source's frame rate (video: default from its header)")
    p.add_argument("--crop", type=crop,
                   help="fractions of the height cut from the top and bottom (default: as the training cache's, "
                        "which the checkpoint records)")
    p.add_argument("--max-gap-s", type=float, default=1.0, help="a longer gap between frames resets the state")
    p.add_argument("--realtime", action="store_true", help="pace to --fps (default 20) and count deadline misses")
    p.add_argument("--max-frames", type=int)
    p.add_argument("--onnx", help="run this graph from `steer export` with ONNX Runtime instead of PyTorch")
    p.add_argument("--out", default="predictions.csv", help="predictions CSV with per-frame latency")


def _frames(args: argparse.Namespace):
    from steer.drive import run as streaming

    if sum(v is not None for v in (args.video, args.images, args.drive, args.camera)) != 1:
        raise SteerError("give exactly one of --video, --images (with --fps), --drive (with --cache), --camera")
    if args.video:
        return streaming.video_frames(args.video, args.fps)
    if args.images:
        if not args.fps:
            raise SteerError("--images needs --fps")
        return streaming.image_frames(args.images, args.fps)
    if args.drive:
        if not args.cache:
            raise SteerError("--drive needs --cache")
        return streaming.drive_frames(args.cache, args.drive)
    return streaming.camera_frames(args.camera)


def run(args: argparse.Namespace) -> None:
    from steer.drive import run as streaming
    from steer.drive.pilot import Pilot

    frames = _frames(args)
    if args.drive and args.crop:
        raise SteerError("--crop with --drive: a cache's frames are cropped already, as it imported them")
    pilot = Pilot(args.checkpoint, crop=args.crop, max_gap_s=args.max_gap_s, onnx=args.onnx, cached=bool(args.drive))
    realtime = (args.fps or 20.0) if args.realtime else None
    print(json.dumps(streaming.run(pilot, frames, args.out, realtime, args.max_frames), indent=1))
