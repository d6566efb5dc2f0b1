"""Evaluation of a trained run on held-out drives: metrics beside baselines, predictions, plots, an
overlay video and an HTML report of it all."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from steer.data.cache import FrameCache
from steer.data.exclusions import Exclusions, excluded_note
from steer.durable import replacing, write_json
from steer.evaluate.metrics import scores_with_baselines
from steer.evaluate.plots import plot_predictions
from steer.evaluate.report import error_histogram, write_report
from steer.evaluate.video import write_overlay
from steer.models import SteerModel, load_model
from steer.models.sequence import predict_drive, predict_drives
from steer.train.checkpoint import read_run
from steer.train.precision import resolve_precision


def _write_predictions(path: Path, rows: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]],
                       targets: list[str]) -> None:
    with replacing(path) as tmp, tmp.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["drive", "frame", "time_s"] + [f"{kind}_{t}" for t in targets for kind in ("true", "pred")])
        for name, time_s, truth, preds in rows:
            for i in range(len(time_s)):
                pairs = [f"{v:.6g}" for k in range(len(targets)) for v in (truth[i, k], preds[i, k])]
                out.writerow([name, i, f"{time_s[i]:.6f}"] + pairs)


def open_run(run: Path, cache: str | Path | None, checkpoint: str) -> tuple[dict, FrameCache, SteerModel, str]:
    """The run's record, its cache (or another), the model of one of its checkpoints and the precision it
    evaluates at: the run's own, resolved on this machine (a run from before `auto` trained at fp32)."""
    info = read_run(run)
    precision, _ = resolve_precision(info["config"].get("precision", "fp32"), "cpu", info["config"]["model"])
    return info, FrameCache(cache or info["config"]["cache"]), load_model(run / checkpoint), precision


def view_drive(run: str | Path, drive_name: str, out: str | Path, cache: str | Path | None = None,
               checkpoint: str = "best", saliency: bool = False) -> Path:
    """An overlay MP4 (and a PNG still beside it) of a run's model driving one drive of the cache (whole:
    frames its exclusions.json leaves out are shown, and said so); with `saliency`, each frame under its
    VisualBackProp map (every branch's together; see explain.py)."""
    run, out = Path(run), Path(out)
    _, frame_cache, model, precision = open_run(run, cache, checkpoint)
    drive, = frame_cache.by_name([drive_name])
    note = excluded_note(frame_cache, drive_name)
    if note:
        print(note)
    preds = predict_drive(model, drive, precision=precision)
    frames = drive.frames
    if saliency:  # imported here: captum loads only when asked for
        from steer.evaluate.explain import combined, heated_frames
        from steer.evaluate.explain import saliency as maps

        frames = heated_frames(frames, combined(maps(model, frames)))
    write_overlay(out, frames, drive.timestamps_s, drive.targets(model.targets), preds, model.targets,
                  drive.units.get("steering", "rad"), still=out.with_suffix(".png"))
    return out


def held_out(info: dict, frame_cache: FrameCache, drives: list[str] | None) -> list[str]:
    """The drives to score: those named; else the run's test drives in its own cache, or every drive with
    frames of another cache (the run's test drives are not in it)."""
    if drives:
        return drives
    if Path(frame_cache.root).resolve() == Path(info["config"]["cache"]).resolve():
        return info["split"]["test"]
    names = [d.name for d in frame_cache.drives if len(d.frames)]
    if not names:
        raise ValueError(f"the cache at {frame_cache.root} has no drive with frames to evaluate on")
    return names


def overlay_path(out: Path, drive_name: str) -> Path:
    """Where evaluate_run writes the overlay video of a drive."""
    return out / f"{drive_name.replace('@', '_').replace(':', '-')}.webm"


def evaluate_run(run: str | Path, cache: str | Path | None = None, drives: list[str] | None = None,
                 out: str | Path | None = None, checkpoint: str = "best", report: bool = True) -> dict:
    """Score a run's checkpoint on `drives` (default: see `held_out`) and write metrics.json and
    predictions.csv into `out` (default: the run folder); with `report`, also predictions.png,
    errors.png, a WebM of the first drive and report.html."""
    run = Path(run)
    info, frame_cache, model, precision = open_run(run, cache, checkpoint)
    names = held_out(info, frame_cache, drives)
    excluded = Exclusions.of(frame_cache.root, frame_cache.manifest)
    meant = info["config"].get("meant", [])  # as the run learnt (runs before meant labels learnt the wheel in force)
    held = [d.labelled(meant) for d in excluded.drives(frame_cache, names)]  # kept frames: model and baselines
    rows = [(drive.name, drive.timestamps_s, drive.targets(model.targets), preds)  # the drives batched together
            for drive, preds in zip(held, predict_drives(model, held, precision=precision))]
    truth = np.concatenate([r[2] for r in rows])
    preds = np.concatenate([r[3] for r in rows])
    scores = scores_with_baselines(truth, preds, model.target_mean.numpy(), model.targets)
    first = held[0]
    metrics = {**scores, "model_name": info["config"]["model"], "checkpoint": str(run / checkpoint),
               "cache": str(frame_cache.root), "drives": names, "frames": int(len(truth)), "precision": precision,
               "meant": meant, "exclusions": excluded.record(),
               "units": {t: first.units.get(t, "?") for t in model.targets}}
    out = Path(out or run)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "metrics.json", metrics)
    _write_predictions(out / "predictions.csv", rows, model.targets)
    if report:
        _write_report(out, info, metrics, rows, first)
    return metrics


def _write_report(out: Path, info: dict, metrics: dict, rows: list, first) -> None:
    """Plots, error histograms, an overlay video of the first drive and report.html holding them all."""
    targets = list(metrics["units"])
    truth, preds = np.concatenate([r[2] for r in rows]), np.concatenate([r[3] for r in rows])
    title = " ".join(f"{t} RMSE {metrics['model'][t]['rmse']:.3g}" for t in targets)
    plot_predictions(out / "predictions.png", rows[:4], targets, metrics["units"],
                     f"{info['config']['model']} on held-out drives: {title}")
    error_histogram(out / "errors.png", truth, preds, targets, metrics["units"])
    video = None
    if len(first.frames):
        video = overlay_path(out, first.name)
        write_overlay(video, first.frames, first.timestamps_s, rows[0][2], rows[0][3], targets,
                      first.units.get("steering", "rad"))
    write_report(out, metrics, info, video)
