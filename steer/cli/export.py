"""`steer export`: the streaming step of a checkpoint as an ONNX graph, and a static int8 copy of it."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from steer.errors import SteerError

if TYPE_CHECKING:
    import numpy as np

    from steer.data.cache import FrameCache

HELP = "ONNX graph of one streaming step, the state as inputs and outputs"
CALIBRATION_DRIVES, CALIBRATION_FRAMES = 4, 100  # frames per drive: ranges settle well before 400 frames


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", default="step.onnx")
    p.add_argument("--int8", action="store_true",
                   help="also a statically quantised int8 graph beside it, calibrated on frames of a cache")
    p.add_argument("--cache", help="with --int8: the cache of the frames (default: the run's)")
    p.add_argument("--drive", help="with --int8: calibrate on this drive (default: a sample of the run's training "
                                   "drives), on frames the cache's exclusions.json keeps")
    p.add_argument("--held-out", help="with --int8: report int8's accuracy beside float on this drive (default: "
                                      "the run's first test drive)")


def _run_record(checkpoint: Path) -> dict:
    """RUN/run.json beside the checkpoint RUN/best, or nothing for a checkpoint on its own."""
    from steer.train.checkpoint import read_run

    return read_run(checkpoint.parent) if (checkpoint.parent / "run.json").exists() else {}


def _drives(args: argparse.Namespace, record: dict) -> tuple[str, list[str], str | None]:
    """The cache, the calibration drives and the held-out drive (if any) for --int8."""
    cache = args.cache or record.get("config", {}).get("cache")
    train = record.get("split", {}).get("train", [])
    if not cache or not (args.drive or train):
        raise SteerError(f"--int8 calibrates on frames and {args.checkpoint} has no run.json beside it that "
                         "names its cache and training drives: give --cache and --drive")
    spread = train[::max(1, len(train) // CALIBRATION_DRIVES)][:CALIBRATION_DRIVES]
    held_out = args.held_out or (record.get("split", {}).get("test") or [None])[0]
    return cache, [args.drive] if args.drive else spread, held_out


def calibration_frames(cache: FrameCache, names: list[str]) -> list[np.ndarray]:
    """The first CALIBRATION_FRAMES kept frames of each named drive, one array per kept part: a part streams
    from a fresh state, as training and streaming start it (steer.data.exclusions)."""
    import numpy as np

    from steer.data.exclusions import kept_drives

    frames = []
    for name in names:
        left = CALIBRATION_FRAMES
        for part in kept_drives(cache, [name]):
            if not left:
                break
            frames.append(np.array(part.frames[:left]))
            left -= len(frames[-1])
    return frames


def run(args: argparse.Namespace) -> None:
    from steer.data.cache import FrameCache
    from steer.drive.export import export_onnx, quantise_int8
    from steer.models import load_model

    if not args.int8 and (args.cache or args.drive or args.held_out):
        raise SteerError("--cache, --drive and --held-out go with --int8")
    model = load_model(args.checkpoint)
    model.require_streamable(f"exporting {args.checkpoint}")
    if args.int8:  # inputs checked before anything is written
        cache, calibration, held_out = _drives(args, _run_record(Path(args.checkpoint)))
        frames = calibration_frames(FrameCache(cache), calibration)
    graph = export_onnx(model, args.out)
    print(f"wrote {graph}")
    if args.int8:
        quantised = quantise_int8(model, graph, frames)
        print(f"wrote {quantised} (calibrated on {sum(map(len, frames))} frames of {', '.join(calibration)})")
        if held_out:
            from steer.evaluate.int8 import int8_cost

            print(json.dumps(int8_cost(args.checkpoint, graph, quantised, cache, held_out), indent=1))
