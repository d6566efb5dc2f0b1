"""Train several models on the same cache, split and seed, evaluate each on the same held-out frames, and
compare them in one table beside the baselines (predicting zero, predicting the training mean).

A model trains into OUT/<label>/. A folder that already holds a run of the same settings and data is
not trained again: reused as it is when finished, resumed from its last checkpoint when not. A folder
holding a run of other settings is refused, never overwritten: it is someone's result."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np

from steer.data.cache import FrameCache
from steer.data.exclusions import Exclusions
from steer.drive.judge import judging, road_judge
from steer.durable import write_json
from steer.evaluate.evaluate import evaluate_run
from steer.models import MODELS
from steer.provenance import versions
from steer.train.checkpoint import read_run
from steer.train.config import TrainConfig, check_model
from steer.train.loop import train

# Every model must see the same frames the same way, or the table compares nothing.
SHARED_FIELDS = ("cache", "targets", "split", "split_by", "seed")
# Settings that change how fast a run trains, not what it learns: a reused run may differ in them.
SPEED_FIELDS = ("threads",)
BASELINES = {"zero": "baseline: zero", "mean": "baseline: train mean"}


def model_configs(spec: dict, out: str | Path, labels: list[str] | None = None,
                  overrides: dict | None = None) -> dict[str, TrainConfig]:
    """One TrainConfig per label from `spec` = {"common": {...}, "models": {label: {...}}}: the common
    settings, then the label's own (its `model` defaults to the label), then `overrides` (command-line
    flags, for every model). `labels` picks models (default: all in spec); a label the spec does not list
    names a registered model, trained with the common settings."""
    unknown = sorted(set(spec) - {"common", "models"})
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in the comparison spec; known: common, models")
    common, overrides = spec.get("common", {}), overrides or {}
    for where, values in (("common", common), ("command-line options", overrides)):
        if {"model", "out"} & set(values):
            raise ValueError(f"{where} cannot set model or out: each model is named by its label and trains "
                             "into OUT/<label>")
    labels = labels or list(spec.get("models", {}))
    if not labels:
        raise ValueError("nothing to compare: name models (e.g. pilotnet,cnn-lstm) or list them in the spec")
    configs = {label: _config(label, common, spec.get("models", {}).get(label, {}), overrides, Path(out))
               for label in labels}
    _check_shared(configs)
    return configs


def _config(label: str, common: dict, own: dict, overrides: dict, out: Path) -> TrainConfig:
    if not label or Path(label).name != label or label.startswith("."):
        raise ValueError(f"model label {label!r} must be a plain folder name")
    if "out" in own:
        raise ValueError(f"model {label!r}: out is set by compare (OUT/{label})")
    config = TrainConfig.from_dict({"model": label, **common, **own, **overrides, "out": str(out / label)})
    if config.model not in MODELS:
        raise ValueError(f"model {label!r}: unknown model {config.model!r}; registered: {', '.join(sorted(MODELS))}")
    try:  # refused now, not after the models before it have trained
        config.check()
        check_model(config)
    except ValueError as error:
        raise ValueError(f"model {label!r}: {error}") from None
    if not config.cache:
        raise ValueError("no frame cache to train on: give --cache (or cache in common)")
    return config


def _check_shared(configs: dict[str, TrainConfig]) -> None:
    first_label, first = next(iter(configs.items()))
    for name in SHARED_FIELDS:
        odd = {label: getattr(c, name) for label, c in configs.items() if getattr(c, name) != getattr(first, name)}
        if odd:
            raise ValueError(f"every model must share {name}: {first_label} has {getattr(first, name)!r}, "
                             + ", ".join(f"{label} has {value!r}" for label, value in odd.items()))


def _finished(run: Path, config: TrainConfig) -> bool:
    progress = run / "last" / "progress.json"
    if not progress.exists():
        return False
    done = json.loads(progress.read_text())
    return done["epoch"] + 1 >= config.epochs or done["bad_epochs"] >= config.patience


def train_or_reuse(config: TrainConfig) -> Path:
    """The run folder of `config`, trained, resumed or reused as the module's docstring says."""
    run = Path(config.out)
    if not (run / "run.json").exists():
        return train(config, judge=road_judge(config))
    info = read_run(run)
    wanted = config.to_dict()
    recorded = TrainConfig.from_dict(info["config"]).to_dict()  # options added since take their defaults
    differ = sorted(k for k in wanted if k not in SPEED_FIELDS and recorded[k] != wanted[k])
    if info["data_hashes"] != FrameCache(config.cache).hashes():
        differ.append("the cache's data")
    if info.get("exclusions") != Exclusions.of(config.cache).record():
        differ.append("the cache's exclusions.json")
    if differ:
        raise ValueError(f"{run} holds a run of other settings ({', '.join(differ)} differ): delete it or "
                         "compare into another folder")
    if _finished(run, config):
        print(f"{run}: finished run of the same settings, reused")
        return run
    print(f"{run}: unfinished run of the same settings, resumed")
    return train(config, resume=True, judge=road_judge(config))


def entry_of(run: Path, metrics: dict) -> dict:
    """A model's entry in compare.json: its run, config, split, parameters, epochs, training frames/s, metrics."""
    info = read_run(run)
    history = json.loads((run / "history.json").read_text())
    speeds = [h.get("train_frames_per_s", h.get("frames_per_s")) for h in history]  # named so since 2026-11-27
    return {"run": str(run), "config": info["config"], "split": info["split"], "parameters": info["parameters"],
            "epochs": len(history), "frames_per_s": float(np.mean(speeds)),
            "metrics": metrics}


def check_comparable(entries: dict[str, dict]) -> None:
    """Every model held out the same drives and was scored on the same frames beside the same baselines (a
    DAgger round's model trained on more drives: its validation and test drives are what must agree)."""
    (first_label, first), *rest = entries.items()
    for label, entry in rest:
        held = any(entry["split"][part] != first["split"][part] for part in ("val", "test"))
        if held or entry["metrics"]["drives"] != first["metrics"]["drives"]:
            raise RuntimeError(f"{label} and {first_label} were split differently (see run.json in {entry['run']} "
                               f"and {first['run']}): their numbers cannot be compared")
        for key in BASELINES:
            if not np.allclose(_numbers(entry["metrics"][key]), _numbers(first["metrics"][key]), rtol=1e-6):
                raise RuntimeError(f"{label} and {first_label} differ in the {key} baseline: they were not "
                                   "scored on the same frames")


def _numbers(scores: dict[str, dict[str, float]]) -> list[float]:
    return [scores[t][m] for t in sorted(scores) for m in ("rmse", "mae")]


def compare(configs: dict[str, TrainConfig], out: str | Path, lap: Callable[[str], None] | None = None) -> dict:
    """Train (or reuse) and evaluate every model, calling `lap(label)` after each (a stopwatch); check they
    share split, test frames and baselines; write and return OUT/compare.json: per model its config, scores,
    training frames/s and parameters, beside the baselines, the split, the data hashes and the versions."""
    out = Path(out)
    entries = {}
    with judging(list(configs.values())):
        for label, config in configs.items():
            print(f"{label}: {config.model} into {config.out}")
            run = train_or_reuse(config)
            entries[label] = entry_of(run, evaluate_run(run))
            if lap:
                lap(label)
    check_comparable(entries)
    first = next(iter(entries.values()))
    info = read_run(first["run"])
    metrics = first["metrics"]
    result = {"targets": list(metrics["units"]), "units": metrics["units"],
              "test": {"drives": metrics["drives"], "frames": metrics["frames"]}, "split": first["split"],
              "baselines": {key: metrics[key] for key in BASELINES}, "models": entries,
              "data_hashes": info["data_hashes"], "exclusions": info.get("exclusions"), "versions": versions()}
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "compare.json", result)
    return result


def comparison_table(scores: dict[str, dict], baselines: dict[str, dict], units: dict[str, str],
                     notes: dict[str, dict[str, float]] | None = None) -> str:
    """One row per model (its RMSE and MAE per target, then its `notes`, e.g. parameters), then the
    baselines; the targets' units on the last line."""
    targets = list(units)
    note_names = list(next(iter(notes.values()))) if notes else []
    rows = [(name, s, (notes or {}).get(name, {})) for name, s in scores.items()]
    rows += [(row, baselines[key], {}) for key, row in BASELINES.items()]
    width = max(len(name) for name, _, _ in rows) + 2
    lines = [" " * width + "".join(f"{t + ' rmse':>16}{t + ' mae':>16}" for t in targets)
             + "".join(f"{n:>16}" for n in note_names)]
    for name, s, extra in rows:
        lines.append(f"{name:<{width}}" + "".join(f"{s[t]['rmse']:>16.4f}{s[t]['mae']:>16.4f}" for t in targets)
                     + "".join(f"{extra[n]:>16,.0f}" if n in extra else " " * 16 for n in note_names).rstrip())
    lines.append("units: " + ", ".join(f"{t} {u}" for t, u in units.items()))
    return "\n".join(lines)


def result_table(result: dict) -> str:
    """The table of a compare() result (or a compare.json)."""
    models = result["models"]
    return comparison_table({label: e["metrics"]["model"] for label, e in models.items()}, result["baselines"],
                            result["units"], {label: {"train frames/s": e["frames_per_s"],
                                                      "parameters": e["parameters"]} for label, e in models.items()})


def compare_seeds(spec: dict, out: str | Path, seeds: list[int], labels: list[str] | None = None,
                  overrides: dict | None = None) -> dict:
    """`compare` once per seed (each model trained once per seed, into OUT/seed-<seed>/<label>), then per
    model and target each seed's RMSE and their mean and standard deviation (over seeds, ddof 1)."""
    if "seed" in (overrides or {}) or "seed" in spec.get("common", {}):
        raise ValueError("--seeds gives the seeds: drop --seed (and seed in common)")
    if len(seeds) < 2 or len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds needs at least two different seeds for a spread, got {seeds}")
    runs = {seed: compare(model_configs(spec, Path(out) / f"seed-{seed}", labels, {**(overrides or {}), "seed": seed}),
                          Path(out) / f"seed-{seed}") for seed in seeds}
    first = next(iter(runs.values()))
    models = {label: {target: spread([runs[s]["models"][label]["metrics"]["model"][target]["rmse"] for s in seeds])
                      for target in first["targets"]} for label in first["models"]}
    return {"seeds": seeds, "targets": first["targets"], "units": first["units"], "models": models,
            "runs": {label: [runs[s]["models"][label]["run"] for s in seeds] for label in first["models"]},
            "baselines": {key: {t: spread([runs[s]["baselines"][key][t]["rmse"] for s in seeds])
                                for t in first["targets"]} for key in BASELINES},
            "versions": versions()}


def spread(values: list[float]) -> dict:
    """Each seed's figure, their mean and sample standard deviation."""
    return {"per_seed": [float(v) for v in values], "mean": float(np.mean(values)),
            "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0}


def add_autonomy(result: dict, roads: int, seconds: float, road_seed: int, processes: int = 1,
                 speed: str = "driver", key: str = "autonomy", **rates: float) -> dict:
    """Closed-loop autonomy (steer.drive.closed_loop) of each seed's best checkpoint and of the reference
    drivers, on the same held-out roads (at `speed`, glitch `rates` if given); into `result` as `key` per
    model and `references`."""
    from steer.drive.closed_loop import autonomy_of

    checkpoints = [str(Path(run) / "best") for runs in result["runs"].values() for run in runs]
    found = autonomy_of(checkpoints, roads, seconds, road_seed, processes, speed, **rates)
    for label, runs in result["runs"].items():
        result["models"][label][key] = spread([found["checkpoints"][str(Path(r) / "best")]["autonomy_pct"]
                                               for r in runs])
    result["references"] = {name: s["autonomy_pct"] for name, s in found["references"].items()}  # blind: any speed
    result["closed_loop" if key == "autonomy" else f"closed_loop_{key}"] = {
        "roads": roads, "seconds": seconds, "road_seed": road_seed, "speed": speed, "rates": rates, "detail": found}
    return result


def seeds_table(result: dict) -> str:
    """Mean +- std over seeds of each model's RMSE per target (and autonomy), then each seed's steering RMSE
    (and autonomy) per model."""
    targets = result["targets"]
    columns = [f"{t} rmse" for t in targets] + (["autonomy %"] if "references" in result else [])
    keys = targets + (["autonomy"] if "references" in result else [])
    width = max(map(len, list(result["models"]) + list(result.get("references", {})) + ["baseline: train mean"])) + 2
    lines = [" " * width + "".join(f"{c:>28}" for c in columns)]
    rows = {**result["models"], **{BASELINES[k]: v for k, v in result["baselines"].items()}}
    for name, row in rows.items():
        lines.append(f"{name:<{width}}" + "".join(f"{mean_std(row[k]):>28}" if k in row else " " * 28 for k in keys))
    for name, autonomy in result.get("references", {}).items():
        lines.append(f"{name:<{width}}" + " " * 28 * len(targets) + f"{autonomy:>28.1f}")
    lines.append("each: mean +- std over seeds " + ",".join(map(str, result["seeds"])) + "; per seed:")
    for name, row in result["models"].items():
        lines.append(f"  {name}: " + "; ".join(f"{key} " + ", ".join(f"{v:.4g}" for v in row[key]["per_seed"])
                                                for key in ("steering", "autonomy") if key in row))
    return "\n".join(lines)


def mean_std(s: dict) -> str:
    """A spread() as `mean +- std` (1 decimal above 5, as autonomy %; 4 below, as an RMSE)."""
    digits = 1 if s["mean"] > 5 else 4
    return f"{s['mean']:.{digits}f} +- {s['std']:.{digits}f}"
