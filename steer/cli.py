"""The `steer` command: one verb per step of the user's day. Thin: parse, then call the package."""
from __future__ import annotations

import argparse
import json
import os
from dataclasses import fields
from pathlib import Path

from steer.sources import FORMAT_OPTIONS
from steer.train.config import TrainConfig


def _add_train_options(parser: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    """One option per TrainConfig field (but `skip`), so the command line and the saved config never disagree."""
    defaults = TrainConfig()
    for f in fields(TrainConfig):
        if f.name in skip:
            continue
        default = getattr(defaults, f.name)
        flag = "--" + f.name.replace("_", "-")
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None)
        elif isinstance(default, dict):
            parser.add_argument(flag, type=json.loads, default=None, help="JSON object, e.g. '{\"cell\": \"gru\"}'")
        elif isinstance(default, list):
            kind = type(default[0])
            parser.add_argument(flag, type=lambda s, k=kind: [k(v) for v in s.split(",")], default=None,
                                help=f"comma-separated (default {','.join(map(str, default))})")
        else:
            parser.add_argument(flag, type=type(default), default=None, help=f"(default {default!r})")


# compare names each model by its label and trains it into OUT/<label>
COMPARE_OWN = ("model", "out")


def _train_flags(args: argparse.Namespace, skip: tuple[str, ...] = ()) -> dict:
    """The training options given on the command line."""
    return {f.name: getattr(args, f.name) for f in fields(TrainConfig)
            if f.name not in skip and getattr(args, f.name) is not None}


def _world(args: argparse.Namespace) -> None:
    from steer.data.cache import FrameCache
    from steer.world.camera import Camera
    from steer.world.simulate import WorldConfig, generate_drives

    height, width = (int(v) for v in args.size.split("x"))
    world = WorldConfig(frames_per_drive=args.frames, fps=args.fps, drop_rate=args.drop_rate,
                        burst_rate=args.burst_rate, camera=Camera(height_px=height, width_px=width))
    if args.replay:
        from steer.data.drive import Signal
        from steer.world.replay import replay

        logs = FrameCache(args.replay).drives
        drives = (replay(d.timestamps_s, {k: Signal(v, d.units[k]) for k, v in d.signals.items()}, world,
                         args.seed + i, d.name, args.speed_mps) for i, d in enumerate(logs))
    else:
        drives = generate_drives(world, args.drives, args.seed, args.processes)
    cache = FrameCache.create(args.out, drives)
    print(f"{len(cache.drives)} drives in {args.out}")


def _import(args: argparse.Namespace) -> None:
    from steer.sources.importer import import_recording

    names = set().union(*FORMAT_OPTIONS.values())
    options = json.loads(Path(args.config).read_text()) if args.config else {}
    options.update({k: getattr(args, k) for k in sorted(names) if getattr(args, k) not in (None, False)})
    height, width = (int(v) for v in args.size.split("x"))
    crop = tuple(float(v) for v in args.crop.split(","))
    for source in args.source:
        report = import_recording(source, args.out, args.format, (height, width), crop, args.max_gap_s,
                                  args.processes, **options)
        print(json.dumps(report, indent=1))


def _train(args: argparse.Namespace) -> None:
    from steer.train.loop import train

    values = json.loads(Path(args.config).read_text()) if args.config else {}
    values.update(_train_flags(args))
    config = TrainConfig.from_dict(values)
    if not config.cache or not config.out:
        raise SystemExit("steer train needs --cache and --out (or both in --config)")
    print(f"best checkpoint in {train(config, resume=args.resume) / 'best'}")


def _compare(args: argparse.Namespace) -> None:
    from steer.compare import compare, model_configs, result_table

    spec = json.loads(Path(args.config).read_text()) if args.config else {}
    labels = args.models.split(",") if args.models else None
    result = compare(model_configs(spec, args.out, labels, _train_flags(args, COMPARE_OWN)), args.out)
    print(f"\nheld-out: {len(result['test']['drives'])} drives, {result['test']['frames']} frames\n"
          f"{result_table(result)}\nwrote {Path(args.out) / 'compare.json'}")


def _score(args: argparse.Namespace) -> None:
    from steer.data.cache import write_json
    from steer.evaluate.score import score_files

    result = score_files(args.predictions, args.truth, args.key, args.tolerance)
    for group, scores in result["scores"].items():
        for target in result["targets"]:
            print(f"{group:<8} {target:<16} frames {scores['frames']:>6}  rmse {scores['model'][target]['rmse']:.10f}"
                  f"  mae {scores['model'][target]['mae']:.10f}  (zero: rmse {scores['zero'][target]['rmse']:.10f})")
    if args.out:
        write_json(Path(args.out), result)


def _evaluate(args: argparse.Namespace) -> None:
    from steer.compare import comparison_table
    from steer.evaluate.evaluate import evaluate_run

    if args.predictions or args.truth:
        if not (args.predictions and args.truth) or args.run:
            raise SystemExit("steer evaluate: give --run, or both --predictions and --truth")
        return _score(args)
    if not args.run:
        raise SystemExit("steer evaluate: give --run, or both --predictions and --truth")

    drives = args.drives.split(",") if args.drives else None
    metrics = evaluate_run(args.run, args.cache, drives, args.out, args.checkpoint)
    print(comparison_table({metrics["model_name"]: metrics["model"]}, metrics, metrics["units"]))


def _run(args: argparse.Namespace) -> None:
    from steer.drive import run as streaming
    from steer.drive.pilot import Pilot

    sources = [args.video, args.images, args.drive, args.camera]
    if sum(v is not None for v in sources) != 1:
        raise SystemExit("steer run: give exactly one of --video, --images (with --fps), --drive (with --cache), "
                         "--camera")
    if args.video:
        frames = streaming.video_frames(args.video, args.fps)
    elif args.images:
        if not args.fps:
            raise SystemExit("steer run --images needs --fps")
        frames = streaming.image_frames(args.images, args.fps)
    elif args.drive:
        if not args.cache:
            raise SystemExit("steer run --drive needs --cache")
        frames = streaming.drive_frames(args.cache, args.drive)
    else:
        frames = streaming.camera_frames(args.camera)
    crop = tuple(float(v) for v in args.crop.split(","))
    pilot = Pilot(args.checkpoint, crop=crop, max_gap_s=args.max_gap_s, onnx=args.onnx)
    realtime = (args.fps or 20.0) if args.realtime else None
    print(json.dumps(streaming.run(pilot, frames, args.out, realtime, args.max_frames), indent=1))


def _view(args: argparse.Namespace) -> None:
    from steer.evaluate.evaluate import view_drive

    print(f"wrote {view_drive(args.run, args.drive, args.out, args.cache, args.checkpoint)}")


def _export(args: argparse.Namespace) -> None:
    from steer.drive.export import export_onnx, int8_cost, quantise_int8
    from steer.train.checkpoint import load_model

    graph = export_onnx(load_model(args.checkpoint), args.out)
    print(f"wrote {graph}")
    if args.int8:
        quantised = quantise_int8(graph)
        print(f"wrote {quantised}")
        if args.cache and args.drive:
            print(json.dumps(int8_cost(args.checkpoint, args.out, quantised, args.cache, args.drive), indent=1))


def _demo(args: argparse.Namespace) -> None:
    from steer.demo import run_demo

    run_demo(args.out, drives=args.drives, frames=args.frames, epochs=args.epochs, seed=args.seed)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="steer", description="Learn to steer through time.")
    verbs = parser.add_subparsers(dest="verb", required=True)

    p = verbs.add_parser("world", help="generate synthetic drives into a frame cache")
    p.add_argument("--out", required=True, help="frame cache folder")
    p.add_argument("--drives", type=int, default=20)
    p.add_argument("--frames", type=int, default=600, help="frames per drive")
    p.add_argument("--fps", type=float, default=20.0)
    p.add_argument("--size", default="66x200", help="HEIGHTxWIDTH of the camera image")
    p.add_argument("--drop-rate", type=float, default=0.02, help="chance of a black frame")
    p.add_argument("--burst-rate", type=float, default=0.004, help="chance that a noise burst starts")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    p.add_argument("--replay", metavar="CACHE",
                   help="instead of generating drivers, replay the logs in this cache (e.g. signal-only imports)")
    p.add_argument("--speed-mps", type=float, help="--replay: constant speed for logs without one")
    p.set_defaults(handler=_world)

    p = verbs.add_parser("import", help="import recordings into a frame cache")
    p.add_argument("source", nargs="+", help="recording folders")
    p.add_argument("--out", required=True, help="frame cache folder")
    p.add_argument("--format", choices=sorted(FORMAT_OPTIONS), help="(default: detected)")
    p.add_argument("--size", default="66x200", help="HEIGHTxWIDTH stored in the cache")
    p.add_argument("--crop", default="0,0", help="fractions of the height cut from the top and bottom")
    p.add_argument("--max-gap-s", type=float, default=1.0, help="a longer time gap starts a new drive")
    p.add_argument("--processes", type=int, default=os.cpu_count() or 1, help="processes that decode images")
    p.add_argument("--steering-rad-per-unit", type=float,
                   help="convert a normalised steering value to radians of steering-wheel angle")
    p.add_argument("--cameras", type=lambda v: v.split(","),
                   help="udacity-sim: e.g. center,left,right (each its own drive)")
    p.add_argument("--side-correction", type=float, help="udacity-sim: steering added to side cameras (default 0.2)")
    p.add_argument("--keep-deleted", action="store_true", help="donkey: import records the tub marks deleted")
    p.add_argument("--throttle-scale", type=float, help="donkey: e.g. -1 where forward is negative")
    p.add_argument("--wheel-unit", choices=["deg", "rad"], help="deeptesla: override the unit of `wheel`")
    p.add_argument("--fps", type=float, help="sullychen, generic: frame rate where the log has no times")
    p.add_argument("--camera", help="udacity: which camera's rows to read (default center)")
    p.add_argument("--config", help="generic: JSON file of the generic options below (flags override it)")
    p.add_argument("--signals", help="generic: steer's name=CSV column:unit, e.g. steering=wheel:deg,speed=v:km/h")
    p.add_argument("--frames", help="generic: a video file or an image folder, relative to the source")
    p.add_argument("--csv-file", help="generic: the CSV (default: the only one in the source)")
    p.add_argument("--frame", help="generic: the column of frame numbers or image names (default frame)")
    p.add_argument("--frame-base", type=int, help="generic: number of the video's first frame (default 0)")
    p.add_argument("--time", help="generic: the time column (else --fps)")
    p.add_argument("--time-unit", choices=["s", "ms", "us", "ns", "unix"], help="generic: (default s)")
    p.add_argument("--signals-only", action="store_true",
                   help="udacity, deeptesla, sullychen: the logs without images or video, as drives without frames")
    p.set_defaults(handler=_import)

    p = verbs.add_parser("train", help="train a model on a frame cache")
    p.add_argument("--config", help="JSON file of training options; flags override it")
    p.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    _add_train_options(p)
    p.set_defaults(handler=_train)

    p = verbs.add_parser("compare", help="train and evaluate several models on the same split, one table")
    p.add_argument("--out", required=True, help="folder: a run folder per model, and compare.json")
    p.add_argument("--models", help="comma-separated labels: registered models (pilotnet,cnn-lstm) or labels of "
                                    "--config (default: all of --config's)")
    p.add_argument("--config", help='JSON {"common": {training options}, "models": {label: {"model": name, '
                                    'training options}}}; the flags below override both, for every model')
    _add_train_options(p, skip=COMPARE_OWN)
    p.set_defaults(handler=_compare)

    p = verbs.add_parser("evaluate", help="score a run on held-out drives beside the baselines, "
                                          "or a predictions file against a ground-truth file")
    p.add_argument("--run", help="run folder written by steer train")
    p.add_argument("--cache", help="frame cache (default: the one the run trained on)")
    p.add_argument("--drives", help="comma-separated drive names (default: the run's test drives)")
    p.add_argument("--out", help="output folder (default: the run folder); with --predictions, a JSON file")
    p.add_argument("--checkpoint", default="best", choices=["best", "last"])
    p.add_argument("--predictions", help="a predictions CSV to score (instead of --run)")
    p.add_argument("--truth", help="the ground-truth CSV for --predictions")
    p.add_argument("--key", default="frame_id", help="the column matching rows of the two files")
    p.add_argument("--tolerance", type=float,
                   help="match --key as a time: the nearest prediction within this much (in the key's units)")
    p.set_defaults(handler=_evaluate)

    p = verbs.add_parser("run", help="run a checkpoint frame by frame over a video, images, a drive or a camera")
    p.add_argument("--checkpoint", required=True, help="a checkpoint folder, e.g. RUN/best")
    p.add_argument("--video", help="a video file")
    p.add_argument("--images", help="a folder of images, in name order")
    p.add_argument("--drive", help="a drive of the frame cache given by --cache")
    p.add_argument("--cache")
    p.add_argument("--camera", type=int, help="an OpenCV camera index, e.g. 0")
    p.add_argument("--fps", type=float, help="the source's frame rate (video: default from its header)")
    p.add_argument("--crop", default="0,0", help="fractions of the height cut from the top and bottom, as imported")
    p.add_argument("--max-gap-s", type=float, default=1.0, help="a longer gap between frames resets the state")
    p.add_argument("--realtime", action="store_true", help="pace to --fps (default 20) and count deadline misses")
    p.add_argument("--max-frames", type=int)
    p.add_argument("--onnx", help="run this graph from `steer export` with ONNX Runtime instead of PyTorch")
    p.add_argument("--out", default="predictions.csv", help="predictions CSV with per-frame latency")
    p.set_defaults(handler=_run)

    p = verbs.add_parser("export", help="ONNX graph of one streaming step, the state as inputs and outputs")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", default="step.onnx")
    p.add_argument("--int8", action="store_true", help="also a dynamically quantised int8 graph beside it")
    p.add_argument("--cache", help="with --int8 and --drive: report int8's accuracy cost on that drive")
    p.add_argument("--drive")
    p.set_defaults(handler=_export)

    p = verbs.add_parser("view", help="an overlay video of a run's model driving one drive")
    p.add_argument("--run", required=True)
    p.add_argument("--drive", required=True, help="a drive name, e.g. one of the run's test drives")
    p.add_argument("--cache", help="(default: the cache the run trained on)")
    p.add_argument("--checkpoint", default="best", choices=["best", "last"])
    p.add_argument("--out", default="view.mp4", help="the MP4; a PNG still is written beside it")
    p.set_defaults(handler=_view)

    p = verbs.add_parser("demo", help="synthetic world -> pilotnet and cnn-lstm -> comparison")
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--drives", type=int, default=96)
    p.add_argument("--frames", type=int, default=200, help="frames per drive")
    p.add_argument("--epochs", type=int, help="epochs for every model (default: each model's own)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=_demo)

    args = parser.parse_args(argv)
    args.handler(args)


if __name__ == "__main__":
    main()
