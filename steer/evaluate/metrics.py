"""Error metrics per target, always beside the two baselines on the same frames: predicting zero and
predicting the training mean."""
from __future__ import annotations

import numpy as np


def errors(truth: np.ndarray, preds: np.ndarray, targets: list[str]) -> dict[str, dict[str, float]]:
    """RMSE and MAE of each target (columns of the (N, K) arrays), in the targets' units."""
    diff = np.asarray(preds, np.float64) - np.asarray(truth, np.float64)
    rmse = np.sqrt(np.mean(diff**2, axis=0))
    mae = np.mean(np.abs(diff), axis=0)
    return {t: {"rmse": float(r), "mae": float(m)} for t, r, m in zip(targets, rmse, mae)}


def scores_with_baselines(truth: np.ndarray, preds: np.ndarray, train_mean: np.ndarray,
                          targets: list[str]) -> dict[str, dict]:
    """{"model", "zero", "mean"}: each per target {"rmse", "mae"}."""
    return {"model": errors(truth, preds, targets),
            "zero": errors(truth, np.zeros_like(truth), targets),
            "mean": errors(truth, np.broadcast_to(train_mean, truth.shape), targets)}
