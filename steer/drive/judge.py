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
    """For `select = "autonomy"`: the model's scores on `select_roads` validation roads of `select_seconds`,
    lateral control, the default loop; None for other selections."""
    if config.select != "autonomy":
        return None
    world, used = cl.world_of_cache(config.cache)
    if world is None:
        raise SteerError(f"--select autonomy drives the synthetic world, and the cache {config.cache} holds no "
                         "world drives: select by --select loss (with --select-weights)")
    seeds = cl.road_seeds(cl.VALIDATION_SEED, config.select_roads)
    if overlap := sorted(set(seeds) & set(used)):
        raise SteerError(f"--select autonomy: validation road {overlap[0]} is drive {used[overlap[0]]!r} of "
                         f"{config.cache}; make the training world with another --seed than {cl.VALIDATION_SEED}")
    world = cl.world_for_loop(world, config.select_seconds)

    def judge(model: SteerModel) -> dict:
        hands = cl.ModelHands(Pilot(model))
        return cl.scores([cl.drive_road(world, seed, hands) for seed in seeds], cl.LoopConfig().penalty_s)
    return judge
