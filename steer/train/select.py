"""Which epoch's checkpoint is kept, and when training stops: by the validation loss (every target, or
weighted), or by driving.

A summed loss lets speed and throttle, whose errors are the larger in normalised units, pick the
checkpoint: `select_weights` weights the targets (e.g. steering only). Open-loop error does not rank
closed-loop driving either (three pilotnet seeds within 0.021 rad of steering RMSE drove 3% to 63%), so
`select = "autonomy"` drives the model on validation roads after each epoch and keeps the most
autonomous one, ties broken by steering RMSE. The driving itself lives above training (steer/drive/), so
it comes in as a `Judge`: the model in, its closed-loop scores out.
"""
from __future__ import annotations

import math
from typing import Callable

from steer.models import SteerModel
from steer.train.config import TrainConfig

Judge = Callable[[SteerModel], dict]  # closed-loop scores of the model as it is now: autonomy_pct, takeovers, ...
WORST = [math.inf, math.inf]  # a score every epoch beats


def score(config: TrainConfig, stats: dict, model: SteerModel) -> list[float]:
    """Lower is better, compared as a list: [weighted validation loss], or [-autonomy %, steering RMSE]."""
    if config.select == "autonomy":
        return [-stats["val_autonomy_pct"], stats["val_rmse_steering"]]
    if not config.select_weights:
        return [stats["val_loss"]]
    std = dict(zip(model.targets, model.target_std.tolist()))
    weights = config.select_weights
    loss = sum(w * (stats[f"val_rmse_{t}"] / std[t]) ** 2 for t, w in weights.items()) / sum(weights.values())
    return [loss]


def check_judge(config: TrainConfig, judge: Judge | None) -> None:
    if config.select == "autonomy" and judge is None:
        raise ValueError("--select autonomy drives the model in the synthetic world: train it with steer train, "
                         "steer compare or steer dagger, which bring the closed loop")


def describe(config: TrainConfig) -> str:
    if config.select == "autonomy":
        return f"autonomy on {config.select_roads} validation roads of {config.select_seconds:g} s"
    weights = config.select_weights
    return "validation loss" + (f" weighted {weights}" if weights else " over all targets")
