"""Scoring a predictions file against a ground-truth file, so published results can be checked.

Rows are matched on a key column (`frame_id` by default) present in both files, exactly, or, with a
tolerance, to the nearest prediction whose key (a time) lies within it; every truth row must have a
prediction. The signals scored are the columns both files share besides the key. Where the
truth has a `public` column (as Udacity's Challenge 2 answer file does), the public (1) and private
(0) halves are scored apart as well, as that leaderboard did.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from steer.data.drive import finite_number
from steer.evaluate.metrics import errors
from steer.sources.table import csv_rows


def _read(path: Path, key: str) -> tuple[list[str], dict[str, tuple[int, dict[str, str]]]]:
    """The columns of a CSV file and its rows by key, each with its line number."""
    columns, table = csv_rows(path, [key])
    rows: dict[str, tuple[int, dict[str, str]]] = {}
    for number, row in table:
        if row[key] in rows:
            raise ValueError(f"{path} line {number}: {key} {row[key]} appears twice")
        rows[row[key]] = (number, row)
    return columns, rows


def _number(text: str | None, column: str, number: int, path: Path) -> float:
    if text is None:  # a row shorter than the header
        raise ValueError(f"{path} line {number}: no cell for {column}")
    value = finite_number(text)
    if value is None:
        raise ValueError(f"{path} line {number}: {column} is {text.strip()!r}, not a finite number")
    return value


def _values(rows: list[tuple[int, dict[str, str]]], columns: list[str], path: Path) -> np.ndarray:
    values = [[_number(row[c], c, number, path) for c in columns] for number, row in rows]
    return np.array(values, dtype=np.float64).reshape(len(rows), len(columns))


def _nearest(truth: dict[str, tuple[int, dict]], preds: dict[str, tuple[int, dict]], key: str, tolerance: float,
             paths: tuple[Path, Path]) -> list[str]:
    """For each truth key (a number: a time), the prediction key nearest to it within `tolerance`."""
    pred_keys = list(preds)
    pred = np.array([_number(k, key, preds[k][0], paths[0]) for k in pred_keys])
    order = np.argsort(pred, kind="stable")
    matched = []
    for k in truth:
        at = _number(k, key, truth[k][0], paths[1])
        i = np.clip(np.searchsorted(pred[order], at), 1, len(pred) - 1)
        best = min(order[i - 1], order[i], key=lambda j: abs(pred[j] - at))
        if abs(pred[best] - at) > tolerance:
            raise ValueError(f"{paths[0]}: no prediction within {tolerance} of {k} ({paths[1]} line {truth[k][0]})")
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
        matched = _nearest(truth_rows, pred_rows, key, tolerance, (predictions, truth))
    y = _values([truth_rows[k] for k in keys], targets, truth)
    p = _values([pred_rows[k] for k in matched], targets, predictions)
    groups = {"all": np.ones(len(keys), bool)}
    if "public" in truth_columns:
        public = np.array([truth_rows[k][1]["public"] == "1" for k in keys])
        groups.update(public=public, private=~public)
    scores = {name: {"model": errors(y[m], p[m], targets), "zero": errors(y[m], np.zeros_like(y[m]), targets),
                     "frames": int(m.sum())} for name, m in groups.items()}
    return {"predictions": str(predictions), "truth": str(truth), "key": key, "targets": targets,
            "frames": len(keys), "scores": scores}
