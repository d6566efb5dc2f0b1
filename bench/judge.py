"""The epoch judge of `--select autonomy` (steer/drive/judge.py): a model in memory scored on validation
roads, one road per process through a checkpoint written for the purpose, beside the same model driving
the roads in turn in this process with the training's threads (what the judge did before), measured in
the same run. The pool is started first, as `judging()` starts it once for a whole training.

    .venv/bin/python bench/judge.py [--roads 4 --seconds 20 --rounds 3] [--processes N]

`ideal` is the time in turn over the processes the roads can use; `ideal/judge` says how much of that the
judge gets (the checkpoint's writing, each worker's loading it, the roads' unequal lengths cost the rest).
The judge's scores must equal one process's driving the roads in turn with one torch thread, as each of its
workers steps; with the training's threads (the judge before) the same arithmetic may round otherwise.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from steer.drive import closed_loop as cl
from steer.drive.judge import judge_on, judging
from steer.drive.pilot import Pilot
from steer.models import create_model
from steer.models.layout import to_channels_last
from steer.train.config import TrainConfig
from steer.world.simulate import WorldConfig

TARGETS = ["steering", "speed", "throttle"]


def _in_turn(world: cl.WorldConfig, seeds: list[int], threads: int):
    """The judge before: the model itself driving the roads one after another in this process."""
    def judge(model) -> dict:
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        hands = cl.ModelHands(Pilot(model))
        try:
            return cl.scores([cl.drive_road(world, seed, hands) for seed in seeds], cl.LoopConfig().penalty_s)
        finally:
            torch.set_num_threads(before)
    return judge


def _model(name: str) -> torch.nn.Module:
    """A fresh model (seed 0) as training holds it between epochs: channels-last, in train mode."""
    torch.manual_seed(0)
    model = create_model(name, targets=TARGETS)
    model.set_target_stats(torch.tensor([0.0, 12.0, 0.4]), torch.tensor([0.2, 4.0, 0.3]))
    to_channels_last(model)
    return model.train()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="pilotnet,cnn-lstm")
    parser.add_argument("--roads", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the training process")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    world = cl.world_for_loop(WorldConfig(), args.seconds)
    seeds = cl.road_seeds(cl.VALIDATION_SEED, args.roads)
    ways = {"in turn": _in_turn(world, seeds, args.threads), "in turn, 1 thread": _in_turn(world, seeds, 1),
            "judge": judge_on(world, seeds, args.processes)}
    print(f"{args.roads} validation roads of {args.seconds:g} s, {args.processes} processes, {args.threads} threads "
          f"in this one; seconds, medians of {args.rounds} rounds")
    print(f"{'model':<10}{'in turn':>9}{'1 thread':>10}{'judge':>8}{'ideal':>8}{'ideal/judge':>13}"
          f"{'in turn/judge':>15}   the judge's scores equal to one thread's, to the training threads'")
    with judging([TrainConfig(select="autonomy")], args.processes):
        for name in args.models.split(","):
            model, times, found = _model(name), {way: [] for way in ways}, {}
            for _ in range(args.rounds):
                for way, judge in ways.items():
                    started = time.perf_counter()
                    found[way] = judge(model)
                    times[way].append(time.perf_counter() - started)
                    model.train()  # as training's next epoch would: Pilot put it in eval mode
            turn, one, pooled = (float(np.median(times[way])) for way in ways)
            ideal = turn / min(args.processes, args.roads)
            judged = found["judge"]
            print(f"{name:<10}{turn:>9.2f}{one:>10.2f}{pooled:>8.2f}{ideal:>8.2f}{ideal / pooled:>13.2f}"
                  f"{turn / pooled:>15.2f}   {judged == found['in turn, 1 thread']}, {judged == found['in turn']} "
                  f"({judged['autonomy_pct']:.1f}%, {judged['takeovers']} take-overs)", flush=True)


if __name__ == "__main__":
    main()
