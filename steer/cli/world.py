"""`steer world`: synthetic drives into a frame cache, or logged drives replayed in the world."""
from __future__ import annotations

import argparse
import sys

from steer.cli.common import add_cache_writer_options, size
from steer.errors import SteerError
from steer.workers import CORES

HELP = "generate synthetic drives into a frame cache"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="frame cache folder")
    p.add_argument("--drives", type=int, default=20)
    p.add_argument("--frames", type=int, default=600, help="frames per drive")
    p.add_argument("--fps", type=float, default=20.0)
    p.add_argument("--size", type=size, default=(66, 200), help="HEIGHTxWIDTH of the camera image")
    p.add_argument("--drop-rate", type=float, default=0.02, help="chance of a black frame")
    p.add_argument("--burst-rate", type=float, default=0.004, help="chance that a noise burst starts")
    p.add_argument("--recovery-rate", type=float, default=0.0,
                   help="share of frames rendered from the car shifted 0.5-1.5 m and turned up to 5 degrees, "
                        "labelled with the steering back to the lane (NVIDIA's recovery views; 0: none)")
    p.add_argument("--recovery-back-s", type=float, default=1.0, help="a recovery label regains the lane in this time")
    p.add_argument("--recovery-run-rate", type=float, default=0.0,
                   help="chance per frame that a recovery run starts: the car displaced 0.5-1.5 m and turned, then "
                        "brought back by the expert over 1-2 s, a continuous run of frames (0: none)")
    p.add_argument("--dart-rad", type=float, default=0.0,
                   help="DART: std of noise on the wheel in force (rad), the meant label staying clean (0: none)")
    p.add_argument("--dart-tau-s", type=float, default=0.5, help="the DART noise's correlation time")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--processes", type=int, default=CORES)
    p.add_argument("--replay", metavar="CACHE",
                   help="instead of generating drivers, replay the logs in this cache (e.g. signal-only imports)")
    p.add_argument("--speed-mps", type=float, help="--replay: constant speed for logs without one")
    add_cache_writer_options(p)


def run(args: argparse.Namespace) -> None:
    from steer.data.cache import FrameCache, write_drives
    from steer.data.drive import SHORT_FRAMES
    from steer.durable import check_room
    from steer.world.camera import Camera
    from steer.world.driver import DriverParams
    from steer.world.recovery import RecoveryParams
    from steer.world.simulate import WorldConfig, generate_drives

    _check(args)
    if not (0 <= args.recovery_rate <= 1 and 0 <= args.recovery_run_rate <= 1) or args.recovery_back_s <= 0:
        raise SteerError("--recovery-rate and --recovery-run-rate must be in [0, 1] and --recovery-back-s above 0")
    if args.dart_rad < 0 or args.dart_tau_s <= 0:
        raise SteerError(f"--dart-rad {args.dart_rad} must be 0 or more and --dart-tau-s {args.dart_tau_s} above 0")
    height, width = args.size
    world = WorldConfig(frames_per_drive=args.frames, fps=args.fps, drop_rate=args.drop_rate,
                        burst_rate=args.burst_rate, camera=Camera(height_px=height, width_px=width),
                        driver=DriverParams(dart_rad=args.dart_rad, dart_tau_s=args.dart_tau_s),
                        recovery=RecoveryParams(rate=args.recovery_rate, back_s=args.recovery_back_s,
                                                run_rate=args.recovery_run_rate))
    if not args.replay:  # a replay's length is its logs'
        check_room(args.out, args.drives * args.frames * 3 * height * width)
    drives = _replayed(args, world) if args.replay else generate_drives(world, args.drives, args.seed, args.processes)
    if args.frames < SHORT_FRAMES:
        print(f"steer world: note: drives of {args.frames} frames are shorter than one training window "
              f"({SHORT_FRAMES})", file=sys.stderr)
    write_drives(args.out, drives, args.lock_timeout)
    print(f"{len(FrameCache(args.out).drives)} drives in {args.out}")


def _check(args: argparse.Namespace) -> None:
    """Refuse flags no world can be made with, and a cache it cannot write to, before anything is written."""
    from steer.data.cache import read_manifest
    from steer.data.drive import LIMITS

    read_manifest(args.out)
    for flag, value in (("--drives", args.drives), ("--processes", args.processes)):
        if value < 1:
            raise SteerError(f"{flag} {value}: at least 1")
    if args.seed < 0:
        raise SteerError(f"--seed {args.seed}: a seed is 0 or more")
    limit = (args.limits or {}).get("speed", LIMITS["speed", "m/s"])
    if args.speed_mps is not None and not 0 < args.speed_mps <= limit:
        raise SteerError(f"--speed-mps {args.speed_mps}: a speed above 0 and at most {limit:g} m/s "
                         f"(widen with --limits speed=...)")


def _replayed(args: argparse.Namespace, world):
    """The logs of the cache `--replay` names, each checked, then replayed in the world."""
    from steer.data.cache import FrameCache
    from steer.data.drive import Signal
    from steer.world.replay import replay
    from steer.world.simulate import check_log

    logs = FrameCache(args.replay).drives
    if not logs:
        raise SteerError(f"--replay {args.replay}: the cache holds no drives")
    signals = [{k: Signal(v, d.units[k]) for k, v in d.signals.items()} for d in logs]
    for log, named in zip(logs, signals):
        check_log(f"--replay {args.replay} drive {log.name}", named, args.limits, args.speed_mps)
    return (replay(d.timestamps_s, named, world, args.seed + i, d.name, args.speed_mps)
            for i, (d, named) in enumerate(zip(logs, signals)))
