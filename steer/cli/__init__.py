"""The `steer` command: one verb per step of the user's day, each a module here with its own small
parser (`add_arguments`) and handler (`run`). A new verb is one module plus its line in `VERBS`.

Every error a user can cause ends the same way: one line on stderr, `steer <verb>: error: ...`, and
exit status 1; Ctrl-C ends with one line and status 130. `--debug` (or STEER_DEBUG=1) shows the
traceback instead.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import sys
from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from steer.allocator import keep_freed_memory
from steer.durable import no_room
from steer.errors import SteerError

VERBS = ["world", "import", "record", "inspect", "verify", "train", "compare", "evaluate", "diagnose", "explain", "run",
         "drive", "dagger", "export", "view", "demo"]

# Errors that come from what the user gave (files, values, flags), not from a bug in steer.
USER_ERRORS = (OSError, ValueError, KeyError, LookupError, FloatingPointError, EOFError)


def _module(verb: str):
    return import_module(f"steer.cli.{verb.replace('import', 'import_')}")


def _version() -> str:
    try:
        return version("steer")
    except PackageNotFoundError:
        return "unknown"


class Parser(argparse.ArgumentParser):
    """Flag errors as one line, like every other error, with where to find the options instead of the usage."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="steer", description="Learn to steer through time.")
    parser.add_argument("--version", action="version", version=f"steer {_version()}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    verbs = parser.add_subparsers(dest="verb", required=True)
    for verb in VERBS:
        module = _module(verb)
        sub = verbs.add_parser(verb, help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        sub.set_defaults(handler=module.run)
    return parser


def message(error: BaseException) -> str:
    """One line for the user: the error's own message (a KeyError's without its quotes)."""
    text = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
    text = " ".join(text.split()) or type(error).__name__
    return text if isinstance(error, USER_ERRORS + (SteerError,)) else f"{type(error).__name__}: {text}"


def _end_now(code: int, program: bool) -> None:
    """Exit after Ctrl-C. The `finally` blocks on the way here have closed and renamed every file; where
    this is the whole program (not main() called in-process) and no child process is left to reap,
    skip the interpreter's teardown, which takes 2 s with torch loaded on a busy machine (a bare
    `import torch` then exit: 1.6-1.8 s at load 8 on 2 cores)."""
    if not program or multiprocessing.active_children():
        raise SystemExit(code) from None
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _no_room(error: Exception, args: argparse.Namespace) -> Exception:
    """A full disk or a read-only folder as one line naming the folder; another --out is offered where the
    verb takes one, unless what it wrote into is the cache it was given (inspect --exclude's exclusions)."""
    room = no_room(error)
    if room is None:
        return error
    given = getattr(args, "cache", None)
    if not hasattr(args, "out") or (given and room.folder.absolute().is_relative_to(Path(given).absolute())):
        room.elsewhere = None
    return room


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    keep_freed_memory()  # every verb's torch steps reuse their freed activations (steer/allocator.py)
    debug = args.debug or os.environ.get("STEER_DEBUG") not in (None, "", "0")
    try:
        args.handler(args)
        if argv is None:  # the work is done: a Ctrl-C while the interpreter shuts down has nothing to stop
            signal.signal(signal.SIGINT, signal.SIG_IGN)
    except KeyboardInterrupt:
        print(f"steer {args.verb}: interrupted", file=sys.stderr)
        _end_now(130, program=argv is None)
    except Exception as error:  # noqa: BLE001 - every error ends as one line unless asked otherwise
        if debug:
            raise
        error = _no_room(error, args)
        hint = "" if isinstance(error, USER_ERRORS + (SteerError,)) else \
            " (this looks like a bug in steer: rerun with --debug and report the traceback)"
        print(f"steer {args.verb}: error: {message(error)}{hint}", file=sys.stderr)
        raise SystemExit(1) from None

