"""`steer record`: an expert's episodes in a Gymnasium environment straight into a frame cache."""
from __future__ import annotations

import argparse

from steer.cli.common import add_cache_writer_options, size

HELP = "record an expert's episodes in an environment (a spec: steer/envs/spec.py) into a frame cache"


def add_env_options(p: argparse.ArgumentParser, required: bool) -> None:
    """What `record` and `drive --env` share: the spec, the expert, the episodes and their seeds."""
    p.add_argument("--env", required=required, metavar="SPEC", help="the environment's JSON spec (steer/envs/spec.py)")
    p.add_argument("--expert", metavar="MODULE:CALLABLE", help="the expert (default: the spec's), taking the env and "
                                                                "returning an action")
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--max-steps", type=int, default=0, help="end an episode after this many steps (0: as the env does)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_env_options(p, required=True)
    p.add_argument("--seed", type=int, default=0, help="episode k is reset with seed SEED + k")
    p.add_argument("--out", required=True, help="frame cache folder")
    p.add_argument("--size", type=size, help="HEIGHTxWIDTH stored (default: the image's own, after the crop)")
    p.add_argument("--stretch", action="store_true", help="allow a --size of another aspect than the cropped image")
    p.add_argument("--dart-rad", type=float, default=0.0,
                   help="DART: std (rad of steering-wheel angle) of Ornstein-Uhlenbeck noise on the executed "
                        "steering; the expert's clean command stays the label (steering_meant). 0: none")
    p.add_argument("--dart-tau-s", type=float, default=0.5, help="DART: the noise's correlation time")
    add_cache_writer_options(p)


def open_env(args: argparse.Namespace):
    """The adapter for --env, with --expert in place of the spec's; episodes checked."""
    from dataclasses import replace
    from pathlib import Path

    from steer.envs.adapter import EnvAdapter
    from steer.envs.spec import load_spec
    from steer.errors import SteerError

    if args.episodes < 1 or args.max_steps < 0:
        raise SteerError("--episodes must be at least 1 and --max-steps 0 or more")
    spec = load_spec(args.env)
    if not args.expert:
        return EnvAdapter(spec)
    module, _, name = args.expert.partition(":")  # a file given here is found from here, not from the spec
    expert = f"{Path(module).resolve()}:{name}" if module.endswith(".py") else args.expert
    return EnvAdapter(replace(spec, expert=expert))


def run(args: argparse.Namespace) -> None:
    from steer.data.cache import read_manifest, write_drives
    from steer.envs import record as rec
    from steer.envs.loop import departures
    from steer.errors import SteerError
    from steer.sources.images import aspect_mismatch

    read_manifest(args.out)  # a broken cache is refused before an episode is driven
    if args.dart_rad < 0 or args.dart_tau_s <= 0:
        raise SteerError("--dart-rad must be 0 or more and --dart-tau-s above 0")
    adapter = open_env(args)
    spec = adapter.spec
    shape = adapter.reset(args.seed).shape[:2]
    kept = (shape[0] - int(round(spec.crop[0] * shape[0])) - int(round(spec.crop[1] * shape[0])), shape[1])
    frame_size = args.size or kept
    if not args.stretch and (why := aspect_mismatch(shape, spec.crop, frame_size)):
        raise SteerError(f"--size {frame_size[0]}x{frame_size[1]}: {spec.name}'s {why}")
    dart = rec.Dart(args.dart_rad, args.dart_tau_s)
    seeds = list(range(args.seed, args.seed + args.episodes))
    returns = []

    def reported():
        for drive in rec.record(adapter, seeds, frame_size, dart, args.max_steps, args.limits):
            returns.append(drive.meta["return"])
            lane = f", {departures(drive.signals['departed'].values > 0)} lane departures" \
                if "departed" in drive.signals else ""
            print(f"{drive.name}: {len(drive)} frames, return {drive.meta['return']:.1f}{lane}", flush=True)
            yield drive

    write_drives(args.out, reported(), args.lock_timeout)
    adapter.close()
    print(f"{len(returns)} episodes of {spec.name} ({frame_size[0]}x{frame_size[1]}, crop {spec.crop[0]:g},"
          f"{spec.crop[1]:g}) into {args.out}: return {sum(returns) / len(returns):.1f} mean")
