"""`steer import`: recordings in the public layouts into a frame cache. The formats, their flags and this
verb's --help come from the readers' declarations (`steer.sources.registry`)."""
from __future__ import annotations

import argparse
import json

from steer.cli.common import add_cache_writer_options, crop, size
from steer.sources.registry import Option, readers
from steer.workers import CORES

HELP = "import recordings into a frame cache"


def add_arguments(p: argparse.ArgumentParser) -> None:
    layouts = readers()
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = "formats (detected from the source unless --format):\n" + "\n".join(
        f"  {name:<12} {layout.help}" for name, layout in layouts.items())
    p.add_argument("source", nargs="+", help="recording folders (or files, where the format reads files)")
    p.add_argument("--out", required=True, help="frame cache folder")
    p.add_argument("--format", choices=list(layouts), help="(default: detected)")
    p.add_argument("--size", type=size, help="HEIGHTxWIDTH stored in the cache (default: 66 high at the aspect of the "
                                             "cropped images; 66x200 where that is not known before decoding)")
    p.add_argument("--crop", type=crop, default=(0.0, 0.0), help="fractions of the height cut from the top and bottom")
    p.add_argument("--stretch", action="store_true",
                   help="allow a --size of another aspect ratio than the cropped images (they are stretched)")
    p.add_argument("--max-gap-s", type=float, default=1.0, help="a longer time gap starts a new drive")
    p.add_argument("--processes", type=int, default=CORES, help="processes that decode images")
    add_cache_writer_options(p)
    p.add_argument("--repeated-times", choices=["refuse", "drop"], default="refuse",
                   help="rows whose time repeats the row before: refuse the import, or drop them (counted)")
    p.add_argument("--odd-frames", choices=["refuse", "resize"], default="refuse",
                   help="images of another size than their drive's first: refuse, or resize them (counted)")
    p.add_argument("--config", help="JSON file of the format's options (e.g. generic's); flags override it")
    groups = {name: p.add_argument_group(f"{name} options") for name in layouts}
    for option, takers in _options().items():
        group = groups[takers[0]]
        kind = {"action": "store_true"} if option.type is bool else {"type": option.type, "choices": option.choices}
        text = option.help if len(takers) == 1 else f"{', '.join(takers)}: {option.help}"
        group.add_argument("--" + option.name.replace("_", "-"), help=text, **kind)


def _options() -> dict[Option, list[str]]:
    """Every reader's options, each with the readers that take it; an option two readers share (the
    same name) must mean the same (the same type) since it becomes one flag."""
    found: dict[str, tuple[Option, list[str]]] = {}
    for name, layout in readers().items():
        for option in layout.options:
            first, takers = found.setdefault(option.name, (option, []))
            if (first.type, first.choices) != (option.type, option.choices):
                raise TypeError(f"readers {takers[0]} and {name} declare option {option.name} with different types")
            takers.append(name)
    return {option: takers for option, takers in found.values()}


def run(args: argparse.Namespace) -> None:
    from steer.data.cache import read_json_file
    from steer.sources.importer import import_recording

    options = read_json_file(args.config) if args.config else {}
    given = {option.name for option in _options()}
    options.update({k: getattr(args, k) for k in sorted(given) if getattr(args, k) not in (None, False)})
    reports = []
    for source in args.source:
        reports.append(import_recording(source, args.out, args.format, args.size, args.crop, args.max_gap_s,
                                        args.processes, args.limits, args.repeated_times, args.odd_frames,
                                        args.lock_timeout, args.stretch, **options))
        print(json.dumps(reports[-1], indent=1))
    if len(reports) > 1:
        print(summary(reports, args.out))


def summary(reports: list[dict], out: str) -> str:
    """One line over the sources of an import."""
    done = [r for r in reports if "skipped" not in r]
    drives, rows, frames = (sum(len(r["drives"]) if k == "drives" else r[k] for r in done)
                            for k in ("drives", "rows", "frames"))
    dropped = sum(sum(r["dropped"].values()) for r in done)
    return (f"{len(reports)} sources into {out}: {drives} drives, {rows} rows, {frames} frames, {dropped} rows left "
            f"out on purpose, {len(reports) - len(done)} sources already in the cache")
