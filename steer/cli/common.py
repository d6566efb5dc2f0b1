"""What several verbs parse the same way: training options from TrainConfig, sizes, crops, JSON files."""
from __future__ import annotations

import argparse
import json
from dataclasses import fields

from steer.train.config import TrainConfig


def add_train_options(parser: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
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
            parser.add_argument(flag, type=json_object, default=None, help="JSON object, e.g. '{\"cell\": \"gru\"}'")
        elif isinstance(default, list):
            kind = type(default[0])
            parser.add_argument(flag, type=lambda s, k=kind: [k(v) for v in s.split(",")], default=None,
                                help=f"comma-separated (default {','.join(map(str, default))})")
        else:
            parser.add_argument(flag, type=type(default), default=None, help=f"(default {default!r})")


def train_flags(args: argparse.Namespace, skip: tuple[str, ...] = ()) -> dict:
    """The training options given on the command line."""
    return {f.name: getattr(args, f.name) for f in fields(TrainConfig)
            if f.name not in skip and getattr(args, f.name) is not None}


def json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not JSON ({error.msg} at character {error.pos}): {text}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"not a JSON object: {text}")
    return value


def size(text: str) -> tuple[int, int]:
    """HEIGHTxWIDTH in pixels, e.g. 66x200."""
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not HEIGHTxWIDTH, e.g. 66x200") from None
    if height < 8 or width < 8:
        raise argparse.ArgumentTypeError(f"{text}: an image needs at least 8x8 pixels")
    return height, width


def crop(text: str) -> tuple[float, float]:
    """TOP,BOTTOM fractions of the height cut away, each in [0, 1), together under 1."""
    try:
        top, bottom = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not TOP,BOTTOM fractions, e.g. 0.35,0.1") from None
    if not (0 <= top < 1 and 0 <= bottom < 1 and top + bottom < 1):
        raise argparse.ArgumentTypeError(f"{text}: each fraction in [0, 1), together under 1")
    return top, bottom


def limits(text: str) -> dict[str, float]:
    """NAME=MAX,...: the largest magnitude accepted per signal, in steer's unit, e.g. steering=20,speed=150."""
    out = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = item.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{item!r} is not NAME=MAX, e.g. steering=20") from None
        if not (name.strip() and out[name.strip()] > 0):
            raise argparse.ArgumentTypeError(f"{item!r}: a signal name and a positive maximum, e.g. steering=20")
    return out


def add_cache_writer_options(parser: argparse.ArgumentParser) -> None:
    """What every verb that writes into a frame cache takes: how long to wait for another writer, how
    far each signal may go."""
    parser.add_argument("--lock-timeout", type=float, default=600.0, metavar="S",
                        help="seconds to wait while another process writes to the cache (default 600)")
    parser.add_argument("--limits", type=limits, metavar="NAME=MAX,...",
                        help="widen a signal's physical range (largest magnitude in steer's unit), "
                             "e.g. steering=20 (rad), speed=150 (m/s)")
