"""The closed loop as a judge of checkpoints: `--select autonomy` drives the model being trained on
validation roads of its training world after each epoch (steer/train/select.py keeps the best)."""
from __future__ import annotations

import os
import tempfile
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from steer.drive import closed_loop as cl
from steer.errors import SteerError
from steer.models import SteerModel
from steer.train.checkpoint import save_checkpoint
from steer.train.config import TrainConfig
from steer.train.select import Judge
from steer.workers import CORES, shared_pool


def road_judge(config: TrainConfig, processes: int = CORES) -> Judge | None:
    """For `select = "autonomy"`: the model's scores on `select_roads` validation roads of `select_seconds`,
    one road per process on `processes` cores; None for other selections."""
    if config.select != "autonomy":
        return None
    world, seeds = validation_roads(config.cache, config.select_roads, config.select_seconds, "--select autonomy")
    return judge_on(world, seeds, processes)


def judging(configs: list[TrainConfig], processes: int = CORES) -> AbstractContextManager:
    """Around the training of `configs`: one pool of drivers for every epoch's judge where one selects by
    autonomy (each pool's start costs its workers the import of torch, 2-3 s on 2 cores); under torchrun on
    rank 0 alone, the one that judges."""
    judged = any(c.select == "autonomy" for c in configs) and os.environ.get("RANK", "0") == "0"
    return shared_pool(processes, "spawn") if judged else nullcontext()


def validation_roads(cache: str, roads: int, seconds: float, why: str) -> tuple[cl.WorldConfig, list[int]]:
    """The cache's world, `seconds` long, and `roads` validation road seeds, none a drive of the cache."""
    world, used = cl.world_of_cache(cache)
    if world is None:
        raise SteerError(f"{why} drives the synthetic world, and the cache {cache} holds no world drives")
    seeds = cl.road_seeds(cl.VALIDATION_SEED, roads)
    if overlap := sorted(set(seeds) & set(used)):
        raise SteerError(f"{why}: validation road {overlap[0]} is drive {used[overlap[0]]!r} of {cache}; make the "
                         f"training world with another --seed than {cl.VALIDATION_SEED}")
    return cl.world_for_loop(world, seconds), seeds


def judge_on(world: cl.WorldConfig, seeds: list[int], processes: int = 1) -> Judge:
    """Scores of a model on `seeds` (`scores_on`), through a checkpoint written for the purpose, as DAgger's
    rounds hand theirs on."""
    def judge(model: SteerModel) -> dict:
        with tempfile.TemporaryDirectory(prefix="steer-judge-") as folder:
            checkpoint = str(Path(folder) / "judged")
            save_checkpoint(checkpoint, model)
            return scores_on(checkpoint, world, seeds, processes)
    return judge


def scores_on(checkpoint: str | Path, world: cl.WorldConfig, seeds: list[int], processes: int) -> dict:
    """The checkpoint's scores over `seeds` with lateral control in the default loop, one road per process;
    its drivers get it by path (a model in memory would travel to them through torch's shared memory, which
    slowed the next training epoch by a quarter: bench/README.md)."""
    found = cl.closed_loop([str(checkpoint)], world, seeds, cl.LoopConfig(), processes)
    return found["drivers"][str(checkpoint)]["overall"]
