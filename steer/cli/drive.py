"""`steer drive`: a checkpoint at the wheel in the synthetic world, on roads it never trained on, scored
beside the world's own driver and a wheel held straight."""
from __future__ import annotations

import argparse
import math
from pathlib import Path

from steer.cli.common import size
from steer.cli.record import add_env_options
from steer.workers import CORES

HELP = ("drive the synthetic world (or, with --env, an environment) in closed loop with a checkpoint, beside "
        "reference drivers")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="a checkpoint folder, e.g. RUN/best")
    p.add_argument("--roads", type=int, default=10)
    p.add_argument("--seconds", type=float, default=60.0, help="driven per road")
    p.add_argument("--seed", type=int, default=1000,
                   help="roads are the world drives of this seed (as `steer world --seed`); refused where the "
                        "checkpoint's run trained on one of them")
    p.add_argument("--speed", choices=["driver", "model"], default="driver",
                   help="driver: the world's driver sets the speed (lateral control only); model: the model's own "
                        "speed (or throttle) prediction")
    p.add_argument("--max-offset-m", type=float, default=1.0, help="take over beyond this from the lane centre")
    p.add_argument("--max-heading-deg", type=float, default=20.0, help="take over beyond this from the lane's heading")
    p.add_argument("--penalty-s", type=float, default=6.0, help="charged per take-over")
    p.add_argument("--size", type=size, help="HEIGHTxWIDTH of the camera (default: the training world's)")
    p.add_argument("--drop-rate", type=float, help="chance of a black frame (default: the training world's)")
    p.add_argument("--burst-rate", type=float, help="chance a noise burst starts (default: the training world's)")
    p.add_argument("--robustness", action="store_true",
                   help="also the model on the same roads with dropped frames (5%%, 20%%), its command 1 and 3 frames "
                        "late, and at half the frame rate: one table")
    p.add_argument("--video", help="MP4 of the model on the first road (camera, wheels, top-down inset), a PNG beside")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads for the model's step (one frame at a time gains little from more, and on a "
                        "busy machine two threads measured 8-13x slower than one)")
    p.add_argument("--processes", type=int, default=CORES,
                   help="roads driven at once, one per process (default: every core); the scores equal one process's")
    p.add_argument("--out", help="folder for closed_loop.json")
    group = p.add_argument_group("an environment instead of the synthetic world (--roads, --seconds and the "
                                 "world's options do not apply; --seed: episode k is reset with SEED + k)")
    add_env_options(group, required=False)
    group.add_argument("--references", action=argparse.BooleanOptionalAction, default=True,
                       help="the expert and zero steering on the same episodes too (--no-references: the model alone)")


def run(args: argparse.Namespace) -> None:
    from dataclasses import replace

    import torch

    from steer.drive import closed_loop as cl
    from steer.durable import write_json
    from steer.errors import SteerError
    from steer.provenance import versions

    if args.env:
        return drive_env(args)
    if args.roads < 1 or args.seconds <= 0 or args.processes < 1:
        raise SteerError("--roads and --processes must be at least 1 and --seconds above 0")
    torch.set_num_threads(args.threads)
    seeds = cl.road_seeds(args.seed, args.roads)
    trained, note = cl.training_world(args.checkpoint, seeds)
    camera = replace(trained.camera, height_px=args.size[0], width_px=args.size[1]) if args.size else None
    world = cl.world_for_loop(trained, args.seconds, camera, drop_rate=args.drop_rate, burst_rate=args.burst_rate)
    loop = cl.LoopConfig(args.max_offset_m, math.radians(args.max_heading_deg), args.penalty_s, args.speed)
    hands = cl.hands_for(str(args.checkpoint), args.speed)  # one that cannot drive is refused before any road
    print(f"{args.roads} roads of {args.seconds:g} s from seed {args.seed}: {note}")
    result = cl.closed_loop([str(args.checkpoint), *cl.REFERENCES], world, seeds, loop, args.processes, args.threads)
    print(cl.table({name: d["overall"] for name, d in result["drivers"].items()}))
    if args.robustness:
        result["robustness"] = cl.robustness(str(args.checkpoint), world, seeds, loop, args.processes, args.threads)
        print(f"\n{args.checkpoint} on the same roads:\n{cl.table(result['robustness'])}")
    if args.video:
        from steer.evaluate.video import write_closed_loop

        Path(args.video).parent.mkdir(parents=True, exist_ok=True)
        run = cl.drive_road(world, seeds[0], hands, loop, keep_frames=True)  # a Pilot unused so far: a fresh state
        write_closed_loop(args.video, run)
        print(f"wrote {args.video}")
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        write_json(Path(args.out) / "closed_loop.json", {"checkpoint": str(args.checkpoint), "seed": args.seed,
                                                         "held_out": note, **result, "versions": versions()})
        print(f"wrote {Path(args.out) / 'closed_loop.json'}")


def drive_env(args: argparse.Namespace) -> None:
    """The checkpoint, the expert and zero steering on the same episodes of --env."""
    import torch

    from steer.cli.record import open_env
    from steer.data.cache import write_json
    from steer.envs import loop as el
    from steer.provenance import versions

    torch.set_num_threads(args.threads)
    adapter = open_env(args)
    seeds = list(range(args.seed, args.seed + args.episodes))
    note = el.check_held_out(args.checkpoint, adapter.spec.name, seeds)
    full = args.speed == "model"
    model = el.ModelDriver(el.pilot(args.checkpoint, adapter), full)
    print(f"{args.episodes} episodes of {adapter.spec.name} from seed {args.seed}, "
          f"{'full' if full else 'lateral'} control: {note}")
    references = el.references(adapter) if args.references else {}
    result = el.evaluate(adapter, {str(args.checkpoint): model, **references}, seeds, full, args.max_steps,
                         lambda line: print(line, flush=True))
    print(el.per_episode_table(result) + "\n\n" + el.table({name: d["overall"] for name, d in result.items()}))
    if args.video:
        from steer.envs.video import write_episode

        Path(args.video).parent.mkdir(parents=True, exist_ok=True)
        episode = el.drive_episode(adapter, seeds[0], model, full, args.max_steps, keep_frames=True)
        write_episode(args.video, episode, adapter.spec.fps)
        print(f"wrote {args.video}")
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        write_json(Path(args.out) / "closed_loop.json", {
            "checkpoint": str(args.checkpoint), "env": adapter.spec.record(), "seeds": seeds,
            "control": "full" if full else "lateral", "held_out": note, "drivers": result, "versions": versions()})
        print(f"wrote {Path(args.out) / 'closed_loop.json'}")
    adapter.close()
