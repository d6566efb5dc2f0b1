"""The closed loop as a judge of checkpoints: `--select autonomy` drives the model being trained on
validation roads of its training world after each epoch (steer/train/select.py keeps the best)."""
from __future__ import annotations

from steer.drive import closed_loop as cl
from steer.drive.pilot import Pilot
from steer.errors import SteerError
from steer.models import SteerModel
from steer.train.config import TrainConfig
from steer.train.select import Judge


def road_judge(config: TrainConfig) -> Judge | None:
    """For `select = "autonomy"`: the model's scores on `select_roads` validation roads of `select_seconds`;
    None for other selections."""
    if config.select != "autonomy":
        return None
    return judge_on(*validation_roads(config.cache, config.select_roads, config.select_seconds, "--select autonomy"))


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


def judge_on(world: cl.WorldConfig, seeds: list[int]) -> Judge:
    """Scores of a model driving `seeds` with lateral control in the default loop."""
    def judge(model: SteerModel) -> dict:
        hands = cl.ModelHands(Pilot(model))
        return cl.scores([cl.drive_road(world, seed, hands) for seed in seeds], cl.LoopConfig().penalty_s)
    return judge
