"""`steer export`: the streaming step of a checkpoint as an ONNX graph."""
from __future__ import annotations

import argparse
import json

HELP = "ONNX graph of one streaming step, the state as inputs and outputs"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", default="step.onnx")
    p.add_argument("--int8", action="store_true", help="also a dynamically quantised int8 graph beside it")
    p.add_argument("--cache", help="with --int8 and --drive: report int8's accuracy cost on that drive")
    p.add_argument("--drive")


def run(args: argparse.Namespace) -> None:
    from steer.drive.export import export_onnx, quantise_int8
    from steer.models import load_model

    model = load_model(args.checkpoint)
    model.require_streamable(f"exporting {args.checkpoint}")
    graph = export_onnx(model, args.out)
    print(f"wrote {graph}")
    if args.int8:
        quantised = quantise_int8(graph)
        print(f"wrote {quantised}")
        if args.cache and args.drive:
            from steer.evaluate.int8 import int8_cost

            print(json.dumps(int8_cost(args.checkpoint, args.out, quantised, args.cache, args.drive), indent=1))
