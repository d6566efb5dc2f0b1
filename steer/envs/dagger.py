"""DAgger in an environment with an expert: the rounds of steer/drive/dagger.py, with episodes of the env
where the synthetic world drives roads.

Each round the current checkpoint drives `episodes` episodes whose seeds no held-out (`held_out`),
validation or recorded episode has, the wheel asked for mixed from the expert's command (share
β = beta ** round) and the model's own (with `full`, the pedals too). Every frame the model saw is
recorded as `steer record` records, with the expert's command at the state the mixed driving reached as
the label (`steering_meant`, `throttle_meant`, `brake_meant`), one drive per episode added to the run's
cache with its provenance (round, β, checkpoint); every round trains on them with each target's
`_meant` label. The model is scored on `val_episodes` validation episodes after every round, as a share
of the expert's mean return on the same episodes.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from steer.data.cache import read_manifest, write_drives
from steer.drive.dagger import Rounds, driving
from steer.envs import loop as el
from steer.envs.adapter import EnvAdapter
from steer.envs.record import Act, record
from steer.errors import SteerError
from steer.train.config import TrainConfig


@dataclass
class EnvDaggerConfig(Rounds):
    episodes: int = 10  # driven per round
    seed: int = 2000  # episode k of round r is reset with seed + (r - 1) * episodes + k
    max_steps: int = 0  # per episode (0: as the env ends it)
    val_episodes: int = 4  # validation episodes scored after every round
    val_seed: int = 3000  # validation episode k is reset with val_seed + k
    held_out: list[int] = field(default_factory=list)  # seeds never driven: the closed loop's
    full: bool = False  # the model's own pedals (mixed as its wheel is), or the expert's
    threads: int = 1  # torch threads for the model's step
    limits: dict[str, float] | None = None  # a signal's physical range widened, as `steer record --limits`

    def check(self) -> None:
        """As every simulator's, and no DAgger episode a held-out or validation one."""
        super().check()
        if self.episodes < 1 or self.val_episodes < 1 or self.max_steps < 0:
            raise SteerError(f"--episodes {self.episodes} and --val-episodes {self.val_episodes} must be at least 1, "
                             f"--max-steps {self.max_steps} 0 or more")
        if overlap := sorted(set(self.seeds()) & (set(self.held_out) | set(self.val_seeds()))):
            raise SteerError(f"--seed {self.seed}: DAgger would drive episode seed {overlap[0]}, a held-out "
                             "(--held-out) or validation (--val-seed) one; give a --seed whose "
                             f"{self.rounds * self.episodes} seeds miss them")
        if overlap := sorted(set(self.val_seeds()) & set(self.held_out)):
            raise SteerError(f"--val-seed {self.val_seed}: validation episode {overlap[0]} is a held-out one")

    def seeds(self, round_: int = 0) -> list[int]:
        """Round `round_`'s episode seeds (1-based; 0: every round's)."""
        first, count = ((round_ - 1) * self.episodes, self.episodes) if round_ else (0, self.rounds * self.episodes)
        return list(range(self.seed + first, self.seed + first + count))

    def val_seeds(self) -> list[int]:
        return list(range(self.val_seed, self.val_seed + self.val_episodes))


@dataclass
class Mixed:
    """DAgger's hands: β x the expert's command + (1 - β) x the model's, its state carried through the episode."""
    driver: el.ModelDriver
    share: float  # β
    full: bool
    provenance: dict  # round and checkpoint

    def start(self, adapter: EnvAdapter, seed: int) -> Act:
        self.driver.reset()

        def act(meant, clean, frame, time_s):
            own = self.driver.act(frame, time_s, clean)
            mix = lambda expert, model: self.share * expert + (1 - self.share) * model  # noqa: E731
            pedals = (mix(clean.throttle, own.throttle), mix(clean.brake, own.brake)) if self.full else (None, None)
            return adapter.action(meant, mix(clean.steering_rad, own.steering_rad), *pedals)
        return act

    def suffix(self) -> str:
        return f"-dagger-r{self.provenance['round']}"

    def meta(self) -> dict:
        return {"source": "dagger", "beta": self.share, "control": "full" if self.full else "lateral",
                **self.provenance}


class EnvEpisodes:
    """An environment as DAgger's simulator, for a run trained on its recorded episodes."""

    def __init__(self, adapter: EnvAdapter, base: TrainConfig, config: EnvDaggerConfig):
        name = adapter.spec.name
        entries = [e["meta"] for e in read_manifest(base.cache)["drives"] if e.get("meta", {}).get("env") == name]
        recorded = {m["seed"] for m in entries if m.get("source") == "env"}
        if not recorded:
            raise SteerError(f"--run: its cache {base.cache} holds no episode of env {name}: DAgger continues a run "
                             "trained on `steer record --env` episodes")
        if overlap := sorted(set(config.seeds()) & recorded):
            raise SteerError(f"--seed {config.seed}: DAgger would drive episode seed {overlap[0]}, which the run's "
                             "cache recorded already; give another --seed")
        if overlap := sorted(set(config.val_seeds()) & {m["seed"] for m in entries}):
            raise SteerError(f"--val-seed {config.val_seed}: validation episode {overlap[0]} is one the run's cache "
                             "holds; give another --val-seed")
        self.adapter, self.base, self.config = adapter, base, config
        self.size = tuple(next(m["size"] for m in entries if m.get("source") == "env"))
        self.expert_mean: float | None = None
        torch.set_num_threads(config.threads)

    def _scores(self, driver: el.Driver) -> dict:
        c = self.config
        return el.evaluate(self.adapter, {"d": driver}, c.val_seeds(), c.full, c.max_steps)["d"]["overall"]

    def validate(self, checkpoint: Path) -> dict:
        """The checkpoint's return on the validation episodes, and as a share of the expert's mean there."""
        if self.expert_mean is None:
            self.expert_mean = self._scores(el.ExpertDriver())["return_mean"]
        found = self._scores(el.ModelDriver(el.pilot(checkpoint, self.adapter), self.config.full))
        return {**found, "expert_return_mean": self.expert_mean,
                "expert_pct": 100 * found["return_mean"] / self.expert_mean}

    def collect(self, checkpoint: Path, round_: int, share: float) -> dict:
        """Round `round_`'s episodes into the run's cache: steps driven (every one kept), lane departures."""
        c = self.config
        hands = Mixed(el.ModelDriver(el.pilot(checkpoint, self.adapter), c.full), share, c.full,
                      {"round": round_, "checkpoint": str(checkpoint)})
        found = []

        def kept():
            for drive in record(self.adapter, c.seeds(round_), self.size, hands, c.max_steps, c.limits):
                departed = drive.signals.get("departed")
                found.append((len(drive), drive.meta["return"],
                              el.departures(departed.values > 0) if departed is not None else 0))
                yield drive

        started = time.perf_counter()
        write_drives(self.base.cache, kept())
        frames, returns, departures = (np.array(v) for v in zip(*found))
        return {"frames": int(frames.sum()), "kept": int(frames.sum()), "episodes": len(found),
                "return_mean": float(returns.mean()), "departures": int(departures.sum()), "beta": share,
                "seconds": time.perf_counter() - started}

    def train_config(self, base: TrainConfig) -> TrainConfig:
        """The expert's command is every target's label: the pedals in force are the model's under full control."""
        return replace(base, meant=list(base.targets))

    def merit(self, validation: dict) -> float:
        return validation["return_mean"]

    def describe(self, validation: dict, driven: dict | None) -> str:
        drove = driving(driven, f"{driven['episodes']} episodes, {driven['departures']} lane departures") \
            if driven else ""
        return (f"validation return {validation['return_mean']:.1f} ± {validation['return_std']:.1f}, "
                f"{validation['expert_pct']:.1f}% of the expert's {validation['expert_return_mean']:.1f}{drove}")

    def record(self) -> dict:
        return {"env": self.adapter.spec.record(), "size": list(self.size), "validation_seeds": self.config.val_seeds()}
