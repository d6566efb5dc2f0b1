"""Data curation that never deletes a byte: find what users clean by hand in a frame cache (frozen frames,
time gaps, steering spikes, standstill, steering held at its limit), and add the ones chosen for exclusion
to the cache's exclusion ranges (`steer.data.exclusions`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from steer.data.cache import CachedDrive
from steer.data.exclusions import add_ranges, runs
from steer.durable import replacing, save_figure, write_json

KINDS = ("frozen", "gap", "spike", "standstill", "saturated")
# The fastest a driver turns the wheel, per unit of steering, per second: a quick hand-over-hand turn is
# about 8 rad/s of wheel; a normalised value (full lock = 1) is taken to reach full lock in 0.2 s.
STEERING_RATE = {"rad": 10.0, "1": 5.0}


@dataclass(frozen=True)
class Flag:
    drive: str
    start: int  # first frame flagged
    end: int  # one past the last
    kind: str
    detail: str


@dataclass(frozen=True)
class Limits:
    gap_factor: float = 1.5  # a step longer than this many median steps: frames were dropped
    steering_rate: float | None = None  # steering units per second (default STEERING_RATE by unit)
    standstill_mps: float = 0.1  # slower than this ...
    standstill_s: float = 1.0  # ... for at least this long
    saturated_s: float = 0.5  # steering held at the cache's largest magnitude for at least this long


def frozen_frames(frames: np.ndarray, chunk: int = 512) -> np.ndarray:
    """Per frame: identical to the one before (a camera that stopped updating), read in chunks."""
    same = np.zeros(len(frames), bool)
    for a in range(1, len(frames), chunk):
        b = min(a + chunk, len(frames))
        same[a:b] = np.all(np.asarray(frames[a:b]) == np.asarray(frames[a - 1:b - 1]), axis=(1, 2, 3))
    return same


def spikes(steering: np.ndarray, steps: np.ndarray, rate: float) -> list[int]:
    """Frames that steering reaches faster than `rate` allows; the step back from such a frame is not
    another spike (one wrong value makes two fast steps)."""
    move = np.diff(steering)
    found: list[int] = []
    for j in np.flatnonzero(np.abs(move) > rate * steps).tolist():
        if not (found and found[-1] == j and np.sign(move[j]) == -np.sign(move[j - 1])):
            found.append(j + 1)
    return found


def _lasting(mask: np.ndarray, t: np.ndarray, seconds: float) -> list[tuple[int, int]]:
    return [(a, b) for a, b in runs(mask) if t[b - 1] - t[a] >= seconds]


def flag_drive(drive: CachedDrive, limits: Limits = Limits(), steering_limit: float | None = None) -> list[Flag]:
    """Every flag of one drive, in frame order per kind."""
    t, name, flags = drive.timestamps_s, drive.name, []
    steps = np.diff(t)
    for a, b in runs(frozen_frames(drive.frames)) if len(drive.frames) else []:
        flags.append(Flag(name, a, b, "frozen", f"{b - a} frame(s) identical to frame {a - 1}"))
    if len(steps):
        median = float(np.median(steps))
        for i in np.flatnonzero(steps > limits.gap_factor * median):
            flags.append(Flag(name, int(i) + 1, int(i) + 2, "gap", f"{steps[i]:.3f} s after the frame before "
                                                                   f"(median step {median:.3f} s)"))
    steering, unit = drive.signals.get("steering"), drive.units.get("steering")
    rate = limits.steering_rate or STEERING_RATE.get(unit)
    if steering is not None and rate and len(steps):
        flags += [Flag(name, i, i + 1, "spike", f"steering moved {steering[i] - steering[i - 1]:+.3f} {unit} in "
                                                f"{steps[i - 1]:.3f} s") for i in spikes(steering, steps, rate)]
    if "speed" in drive.signals:
        for a, b in _lasting(drive.signals["speed"] < limits.standstill_mps, t, limits.standstill_s):
            flags.append(Flag(name, a, b, "standstill", f"{t[b - 1] - t[a]:.1f} s under {limits.standstill_mps} m/s"))
    if steering is not None and steering_limit:
        held = np.abs(steering) >= steering_limit * (1 - 1e-6)
        for a, b in _lasting(held, t, limits.saturated_s):
            flags.append(Flag(name, a, b, "saturated", f"steering at {steering[a]:+.3f} {unit} for "
                                                       f"{t[b - 1] - t[a]:.1f} s"))
    return flags


def flag_cache(drives: list[CachedDrive], limits: Limits = Limits()) -> list[Flag]:
    """Every drive's flags; steering is saturated where it sits at the largest magnitude of the whole cache."""
    steering = [np.abs(d.signals["steering"]).max() for d in drives if "steering" in d.signals]
    limit = float(max(steering)) if steering else None
    return [flag for drive in drives for flag in flag_drive(drive, limits, limit)]


def exclude(cache: str | Path, flags: list[Flag], lock_timeout_s: float = 600.0) -> list[dict]:
    """Add the flags' ranges to the cache's exclusion ranges (once each); returns them all."""
    ranges = [{"drive": f.drive, "start": f.start, "end": f.end, "reason": f.kind} for f in flags]
    return add_ranges(cache, ranges, lock_timeout_s).ranges


def as_dicts(flags: list[Flag]) -> list[dict]:
    return [asdict(f) for f in flags]


def write_report(out: str | Path, drives: list[CachedDrive], flags: list[Flag]) -> Path:
    """flags.json, a steering histogram and a timeline per drive (PNG), and inspect.html holding them all."""
    import base64
    import html

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "flags.json", as_dicts(flags))
    images = [_histogram(plt, out / "steering-histogram.png", drives), *_timelines(out, drives, flags)]
    rows = "".join(f"<tr><td>{html.escape(f.drive)}</td><td>{f.start}</td><td>{f.end}</td><td>{f.kind}</td>"
                   f"<td>{html.escape(f.detail)}</td></tr>" for f in flags)
    figures = "".join(f'<p><img src="data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}"></p>'
                      for p in images if p)
    page = (f"<!doctype html><meta charset=utf-8><title>steer inspect</title><h1>{len(flags)} flags in "
            f"{len(drives)} drives</h1><table border=1><tr><th>drive</th><th>start</th><th>end</th><th>kind</th>"
            f"<th>detail</th></tr>{rows}</table>{figures}")
    with replacing(out / "inspect.html") as tmp:
        tmp.write_text(page)
    return out / "inspect.html"


COLOURS = {"frozen": "tab:blue", "gap": "tab:red", "spike": "tab:orange", "standstill": "tab:grey",
           "saturated": "tab:purple"}


def _histogram(plt, path: Path, drives: list[CachedDrive]) -> Path | None:
    values = [d.signals["steering"] for d in drives if "steering" in d.signals]
    if not values:
        return None
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.hist(np.concatenate(values), bins=100, color="black")
    ax.set_xlabel(f"steering ({drives[0].units.get('steering', '?')})")
    ax.set_ylabel("frames")
    ax.set_yscale("log")
    save_figure(fig, path)
    return path


@dataclass(frozen=True)
class _Timeline:
    """What one drive's timeline shows: a worker process draws it from this, not from the drive's frames."""
    path: Path
    drive: str
    t: np.ndarray  # seconds from the drive's first frame
    signals: dict[str, np.ndarray]
    units: dict[str, str]
    flags: list[Flag]

    @staticmethod
    def of(out: Path, drive: CachedDrive, flags: list[Flag]) -> "_Timeline":
        names = [n for n in ("steering", "speed") if n in drive.signals] or sorted(drive.signals)[:1]
        return _Timeline(out / f"timeline-{drive.name}.png", drive.name, drive.timestamps_s - drive.timestamps_s[0],
                         {n: np.asarray(drive.signals[n]) for n in names},
                         {n: drive.units.get(n, "?") for n in names}, [f for f in flags if f.drive == drive.name])


def _timelines(out: Path, drives: list[CachedDrive], flags: list[Flag]) -> list[Path]:
    """A timeline per drive, drawn on every core: matplotlib's layout and PNG cost 0.1-0.2 s a figure, which
    was nearly all of `steer inspect`'s time on a cache of many drives (bench/README.md)."""
    from steer.workers import CORES, pool

    jobs = [_Timeline.of(out, d, flags) for d in drives]
    if not jobs:
        return []
    with pool(min(len(jobs), CORES), "fork") as workers:
        return workers.map(_draw_timeline, jobs)


def _draw_timeline(job: _Timeline) -> Path:
    """Steering and speed over time, the flagged frames shaded by kind."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = max(len(job.signals), 1)
    fig, axes = plt.subplots(rows, 1, figsize=(12, 2.2 * rows), sharex=True, squeeze=False)
    t = job.t
    for ax, (name, values) in zip(axes[:, 0], job.signals.items()):
        ax.plot(t, values, color="black", lw=0.8)
        ax.set_ylabel(f"{name} ({job.units[name]})")
    shown = set()
    for f in job.flags:
        for ax in axes[:, 0]:
            ax.axvspan(t[f.start], t[f.end - 1] + (t[1] - t[0] if len(t) > 1 else 0.05), color=COLOURS[f.kind],
                       alpha=0.35, lw=0, label=None if f.kind in shown else f.kind)
            shown.add(f.kind)
    if shown:
        axes[0, 0].legend(loc="upper right")
    axes[0, 0].set_title(job.drive)
    axes[-1, 0].set_xlabel("time (s)")
    save_figure(fig, job.path)
    return job.path
