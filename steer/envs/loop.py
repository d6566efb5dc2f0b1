"""A checkpoint at the wheel of an environment, beside the expert (the ceiling) and a wheel held straight
(the floor), on the same seeds. With lateral control the expert's pedals drive every driver; with full
control the model's own throttle and brake do. Scored by the env's return and, where the spec has a
measure, lane departures (each time the car leaves its lane) and the share of frames off it."""
from __future__ import annotations

from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from steer.data.cache import read_manifest
from steer.drive.pilot import Pilot
from steer.envs.adapter import Controls, EnvAdapter
from steer.errors import SteerError
from steer.models import SteerModel
from steer.train.checkpoint import read_run


class Driver(Protocol):
    """Controls for a frame, or None for the expert's own action; `blind` drivers are given no frame."""

    def act(self, frame: np.ndarray | None, time_s: float, expert: Controls | None) -> Controls | None: ...


class ExpertDriver:
    blind = True

    def act(self, frame, time_s, expert):
        return None


class ZeroDriver:
    """The wheel held straight, the expert's pedals."""
    blind = True

    def act(self, frame, time_s, expert):
        return Controls(0.0, expert.throttle, expert.brake)


class ModelDriver:
    """A checkpoint's `Pilot`, its state carried through the episode; its throttle and brake where it predicts them."""

    def __init__(self, pilot: Pilot, full: bool = False):
        missing = sorted({"steering", *(["throttle"] if full else [])} - set(pilot.targets))
        if missing:
            why = "it cannot steer" if "steering" in missing else "--speed model drives its own pedals"
            raise SteerError(f"the checkpoint predicts {pilot.targets}, not {', '.join(missing)}: {why}")
        self.pilot = pilot

    def reset(self) -> None:
        self.pilot.reset()

    def act(self, frame, time_s, expert):
        p = self.pilot.step(frame, time_s)
        return Controls(p["steering"], p.get("throttle", 0.0), p.get("brake", 0.0))


def pilot(checkpoint: str | Path | SteerModel, adapter: EnvAdapter) -> Pilot:
    """A `Pilot` cropping as the checkpoint's training cache did; one from before checkpoints recorded that, as the
    spec crops."""
    found = Pilot(checkpoint)
    return found if found.made else Pilot(checkpoint, adapter.spec.crop)


@dataclass
class Episode:
    seed: int
    rewards: np.ndarray  # per step
    asked_rad: np.ndarray  # the steering the driver asked for (the expert's own for the expert)
    expert_rad: np.ndarray  # the expert's at the same state (NaN without an expert)
    departed: np.ndarray | None  # per frame, where the spec measures it
    frames: np.ndarray | None = None  # (N, H, W, 3) as the env rendered them, kept on request


def drive_episode(adapter: EnvAdapter, seed: int, driver: Driver, full: bool = False, max_steps: int = 0,
                  keep_frames: bool = False) -> Episode:
    """One episode from `reset(seed=seed)` with `driver` steering (and with `full`, on the pedals too)."""
    frame, fps = adapter.reset(seed), adapter.spec.fps
    if reset := getattr(driver, "reset", None):
        reset()
    log: dict[str, list] = {"reward": [], "asked": [], "expert": [], "departed": [], "frames": []}
    for i in count():
        expert_action = adapter.expert_action() if adapter.expert else None
        expert = adapter.controls(expert_action) if expert_action is not None else None
        asked = driver.act(None if getattr(driver, "blind", False) else frame, i / fps, expert)
        action = expert_action if asked is None else _action(adapter, expert_action, asked, full)
        log["asked"].append(adapter.controls(action).steering_rad)
        log["expert"].append(expert.steering_rad if expert else np.nan)
        log["departed"].append(adapter.departed())
        if keep_frames:
            log["frames"].append(frame)
        frame, reward, done = adapter.step(action)
        log["reward"].append(reward)
        if done or (max_steps and i + 1 >= max_steps):
            break
    departed = None if log["departed"][0] is None else np.array(log["departed"], bool)
    return Episode(seed, np.array(log["reward"]), np.array(log["asked"]), np.array(log["expert"]), departed,
                   np.stack(log["frames"]) if keep_frames else None)


def _action(adapter: EnvAdapter, expert_action: np.ndarray | None, asked: Controls, full: bool) -> np.ndarray:
    if full:
        return adapter.action(expert_action, asked.steering_rad, asked.throttle, asked.brake)
    if expert_action is None:
        raise SteerError(f"env {adapter.spec.name}: lateral control drives with the expert's pedals, and the spec "
                         "names no expert: give --expert module:callable, or --speed model for the model's own")
    return adapter.action(expert_action, asked.steering_rad)


def departures(departed: np.ndarray) -> int:
    """How many times the car left its lane (a start off it counts once)."""
    return int(np.sum(np.diff(departed.astype(int), prepend=0) == 1))


def episode_scores(e: Episode) -> dict:
    found = {"return": float(e.rewards.sum()), "steps": len(e.rewards)}
    if e.departed is not None:
        found.update(departures=departures(e.departed), off_lane_pct=float(e.departed.mean() * 100))
    return found


def overall(per_episode: list[dict]) -> dict:
    returns = np.array([s["return"] for s in per_episode])
    found = {"return_mean": float(returns.mean()), "return_std": float(returns.std()),
             "return_min": float(returns.min()), "episodes": len(per_episode),
             "steps_mean": float(np.mean([s["steps"] for s in per_episode]))}
    if "departures" in per_episode[0]:
        found.update(departures=sum(s["departures"] for s in per_episode),
                     off_lane_pct=float(np.mean([s["off_lane_pct"] for s in per_episode])))
    return found


def evaluate(adapter: EnvAdapter, drivers: dict[str, Driver], seeds: list[int], full: bool = False,
             max_steps: int = 0, say: Callable[[str], None] | None = None) -> dict:
    """Every driver on every seed: per episode and overall; `say` is told each episode's return as it ends."""
    result = {}
    for name, driver in drivers.items():
        per = {}
        for seed in seeds:
            per[str(seed)] = episode_scores(drive_episode(adapter, seed, driver, full, max_steps))
            if say:
                say(f"{name}, seed {seed}: return {per[str(seed)]['return']:.1f} in {per[str(seed)]['steps']} steps")
        result[name] = {"overall": overall(list(per.values())), "per_episode": per}
    return result


def references(adapter: EnvAdapter) -> dict[str, Driver]:
    """The expert (ceiling) and zero steering (floor), where the spec has an expert."""
    return {"expert (ceiling)": ExpertDriver(), "zero steering (floor)": ZeroDriver()} if adapter.expert else {}


def recorded_seeds(checkpoint: str | Path, env_name: str) -> tuple[set[int], str]:
    """The seeds of the episodes of env `env_name` in the cache the checkpoint's run trained on (recorded, and
    driven by DAgger), and a note."""
    run = Path(checkpoint).parent
    if not (run / "run.json").exists():
        return set(), f"no run.json beside {checkpoint}: held-out seeds not checked"
    cache = Path(read_run(run)["config"]["cache"])
    entries = [d["meta"] for d in read_manifest(cache)["drives"]]
    seeds = {m["seed"] for m in entries if m.get("source") in ("env", "dagger") and m.get("env") == env_name}
    return seeds, f"no episode one of the {len(seeds)} of {env_name} in {cache}"


def check_held_out(checkpoint: str | Path, env_name: str, seeds: list[int]) -> str:
    recorded, note = recorded_seeds(checkpoint, env_name)
    if overlap := sorted(recorded & set(seeds)):
        raise SteerError(f"seed {overlap[0]} is an episode the checkpoint's run trained on: pick --seed so that no "
                         f"episode is one it recorded (its seeds run {min(recorded)}..{max(recorded)})")
    return note


def table(rows: dict[str, dict]) -> str:
    """One line per driver of its overall scores."""
    width = max(len(name) for name in rows) + 2
    has_lane = all("departures" in s for s in rows.values())
    head = f"{'return mean':>13}{'± std':>9}{'min':>9}{'steps':>8}" + (f"{'departures':>12}{'off lane %':>12}"
                                                                      if has_lane else "")
    lines = [" " * width + head]
    for name, s in rows.items():
        line = f"{name:<{width}}{s['return_mean']:>13.1f}{s['return_std']:>9.1f}{s['return_min']:>9.1f}" \
               f"{s['steps_mean']:>8.0f}"
        lines.append(line + (f"{s['departures']:>12d}{s['off_lane_pct']:>12.1f}" if has_lane else ""))
    return "\n".join(lines)


def per_episode_table(result: dict) -> str:
    """Each driver's return per seed."""
    seeds = list(next(iter(result.values()))["per_episode"])
    width = max(len(name) for name in result) + 2
    lines = [f"{'return by seed':<{width}}" + "".join(f"{s:>9}" for s in seeds)]
    for name, d in result.items():
        lines.append(f"{name:<{width}}" + "".join(f"{d['per_episode'][s]['return']:>9.1f}" for s in seeds))
    return "\n".join(lines)
