"""Scoring a predictions file against a ground-truth file, so published results can be checked.

Rows are matched on a key column (`frame_id` by default) present in both files, exactly, or, with a
tolerance, to the nearest prediction whose key (a time) lies within it; every truth row must have a
prediction. The signals scored are the columns both files share besides the key. Where the
truth has a `public` column (as Udacity's Challenge 2 answer file does), the public (1) and private
(0) halves are scored apart as well, as that leaderboard did.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from steer.evaluate.metrics import errors


def _read(path: Path, key: str) -> tuple[list[str], dict[str, dict[str, str]]]:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if key not in (reader.fieldnames or []):
            raise ValueError(f"{path}: no key column {key!r}; it has {reader.fieldnames}")
        rows: dict[str, dict[str, str]] = {}
        for number, row in enumerate(reader, 2):
            if row[key] in rows:
                raise ValueError(f"{path} line {number}: {key} {row[key]} appears twice")
            rows[row[key]] = row
    return list(reader.fieldnames), rows


def _values(rows: list[dict[str, str]], columns: list[str], path: Path) -> np.ndarray:
    try:
        values = np.array([[float(row[c]) for c in columns] for row in rows])
    except ValueError:
        raise ValueError(f"{path}: a value in {columns} is not a number") from None
    if np.isnan(values).any():
        raise ValueError(f"{path}: NaN in {columns}")
    return values.reshape(len(rows), len(columns))


def _nearest(truth_keys: list[str], pred_keys: list[str], tolerance: float, path: Path) -> list[str]:
    """For each truth key (a number: a time), the prediction key nearest to it within `tolerance`."""
    pred = np.array([float(k) for k in pred_keys])
    order = np.argsort(pred)
    matched = []
    for key in truth_keys:
        i = np.clip(np.searchsorted(pred[order], float(key)), 1, len(pred) - 1)
        best = min(order[i - 1], order[i], key=lambda j: abs(pred[j] - float(key)))
        if abs(pred[best] - float(key)) > tolerance:
            raise ValueError(f"{path}: no prediction within {tolerance} of {key}")
        matched.append(pred_keys[best])
    return matched


def score_files(predictions: str | Path, truth: str | Path, key: str = "frame_id",
                tolerance: float | None = None) -> dict:
    """{"frames", "targets", "scores": {group: {"model", "zero"}}} with group "all", and "public" and
    "private" where the truth marks them; each per target {"rmse", "mae"}."""
    predictions, truth = Path(predictions), Path(truth)
    truth_columns, truth_rows = _read(truth, key)
    pred_columns, pred_rows = _read(predictions, key)
    targets = [c for c in truth_columns if c in pred_columns and c not in (key, "public")]
    if not targets:
        raise ValueError(f"{predictions} and {truth} share no column to score besides {key!r}")
    keys = list(truth_rows)
    if tolerance is None:
        missing = [k for k in keys if k not in pred_rows]
        if missing:
            raise ValueError(f"{predictions}: no prediction for {len(missing)} {key}(s) of {truth}, first {missing[0]}")
        matched = keys
    else:
        matched = _nearest(keys, list(pred_rows), tolerance, predictions)
    y = _values([truth_rows[k] for k in keys], targets, truth)
    p = _values([pred_rows[k] for k in matched], targets, predictions)
    groups = {"all": np.ones(len(keys), bool)}
    if "public" in truth_columns:
        public = np.array([truth_rows[k]["public"] == "1" for k in keys])
        groups.update(public=public, private=~public)
    scores = {name: {"model": errors(y[m], p[m], targets), "zero": errors(y[m], np.zeros_like(y[m]), targets),
                     "frames": int(m.sum())} for name, m in groups.items()}
    return {"predictions": str(predictions), "truth": str(truth), "key": key, "targets": targets,
            "frames": len(keys), "scores": scores}
