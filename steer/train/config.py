"""Training configuration: one flat set of named values with defaults, saved beside every run."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

PRECISIONS = ("auto", "fp32", "bf16")  # auto: resolved per device by steer/train/precision.py
SELECTIONS = ("loss", "autonomy")  # what picks the kept checkpoint (steer/train/select.py)


@dataclass
class TrainConfig:
    cache: str = ""
    out: str = ""
    model: str = "cnn-lstm"
    model_args: dict = field(default_factory=dict)  # e.g. {"cell": "gru", "layers": 2}
    targets: list[str] = field(default_factory=lambda: ["steering", "speed", "throttle"])
    window: int = 8  # frames per window: the truncation length of backpropagation through time
    stride: int = 8  # stateless windows only
    stateful: bool = True  # carry the state from window to window of a drive
    burn_in: int = 0  # stateless windows only: frames before each window that warm the state up, no loss
    batch_size: int = 16
    epochs: int = 10
    optimizer: str = "adam"  # or "sgd" (with momentum 0.9)
    lr: float = 1e-3
    weight_decay: float = 0.0
    clip_grad_norm: float = 1.0
    patience: int = 3  # epochs without a better validation loss before stopping
    split: list[float] = field(default_factory=lambda: [0.7, 0.15, 0.15])  # train, val, test fractions
    split_by: str = "drive"  # "drive": whole drives held out; "time": each drive cut into three blocks
    seed: int = 0
    device: str = "cpu"  # or "cuda"; under torchrun each rank takes the GPU of its local rank
    threads: int = 0  # torch CPU threads; 0 = all cores
    precision: str = "auto"  # bf16 autocast where the device does bf16 fast (steer/train/precision.py), or fp32, bf16
    channels_last: bool = True  # NHWC 2-d convolutions: as fast or faster for every model (bench/README.md)
    compile: bool = False  # torch.compile the training forward: on 2 CPU cores minutes to compile, then no faster
    health_every: int = 0  # gradient health every N steps (steer/train/health.py); 0: off, and free
    gpu_cache: bool = True  # hold the training inputs on the GPU when they take under half its free memory
    meant: list[str] = field(default_factory=lambda: ["steering"])  # targets learnt from a drive's <target>_meant
    # signal where it has one (the command the world's driver meant, not the one in force); none: all as in force
    init: str = ""  # a checkpoint folder whose weights (and target statistics) the run starts from: fine-tuning
    select: str = "loss"  # the kept checkpoint and early stopping: validation "loss" or closed-loop "autonomy"
    select_weights: dict = field(default_factory=dict)  # loss: weight per target, e.g. {"steering": 1}; {}: all 1
    select_roads: int = 4  # autonomy: validation roads (world seed VALIDATION_SEED, none a held-out road)
    select_seconds: float = 20.0  # autonomy: driven per road
    augment: bool = False  # training frames transformed, one draw per window or lane (steer/train/augment.py)
    augment_strengths: dict = field(default_factory=dict)  # per part, over the defaults, e.g. {"flip": 0}; 0: off

    def check(self) -> None:
        """Refuse values that cannot train, naming the flag: before anything is written."""
        positive = {"epochs": self.epochs, "batch_size": self.batch_size, "window": self.window,
                    "stride": self.stride, "patience": self.patience, "lr": self.lr,
                    "clip_grad_norm": self.clip_grad_norm, "select_roads": self.select_roads,
                    "select_seconds": self.select_seconds}
        for name, value in positive.items():
            if not value > 0:
                raise ValueError(f"{flag(name)} {value}: must be above 0")
        zero_or_more = ("burn_in", "weight_decay", "threads", "health_every")
        if any(getattr(self, n) < 0 for n in zero_or_more):
            name = next(n for n in zero_or_more if getattr(self, n) < 0)
            raise ValueError(f"{flag(name)} {getattr(self, name)}: must be 0 or more")
        split = self.split
        if len(split) != 3 or min(split) < 0 or min(split[:2]) <= 0 or not math.isclose(sum(split), 1, abs_tol=1e-6):
            raise ValueError(f"--split {','.join(map(str, split))}: give three fractions TRAIN,VAL,TEST adding up to "
                             "1, train and validation above 0 (validation picks the best checkpoint), e.g. "
                             "0.7,0.15,0.15")
        choices = {"split_by": ("drive", "time"), "optimizer": ("adam", "sgd"), "precision": PRECISIONS,
                   "select": SELECTIONS}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{flag(name)} {getattr(self, name)}: choose {' or '.join(allowed)}")
        if not self.targets or len(set(self.targets)) != len(self.targets):
            raise ValueError(f"--targets {','.join(self.targets)}: name each target once, e.g. steering,speed")
        if self.meant != ["none"] and set(self.meant) - set(self.targets):
            raise ValueError(f"--meant {','.join(self.meant)}: name targets of --targets ({', '.join(self.targets)}), "
                             "or none to learn every target as in force")
        weights = self.select_weights
        valid = all(isinstance(w, (int, float)) and w >= 0 for w in weights.values())
        if set(weights) - set(self.targets) or not valid or (weights and not sum(weights.values()) > 0):
            raise ValueError(f"--select-weights {weights}: a weight of 0 or more per target of --targets "
                             f"({', '.join(self.targets)}), not all 0, e.g. '{{\"steering\": 1}}'")
        if self.select == "autonomy" and "steering" not in self.targets:
            raise ValueError("--select autonomy drives the model: --targets must include steering")
        self.check_augment()

    def check_augment(self) -> None:
        from steer.train.augment import check_strengths  # here: parsing flags should not load torch

        if self.augment_strengths and not self.augment:
            raise ValueError("--augment-strengths without --augment changes nothing: add --augment")
        if self.augment:
            check_strengths(self.augment_strengths, self.targets)

    @staticmethod
    def from_dict(d: dict) -> "TrainConfig":
        known = {f.name for f in fields(TrainConfig)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown training option(s) {unknown}; known: {sorted(known)}")
        return TrainConfig(**d)

    def to_dict(self) -> dict:
        return asdict(self)


def flag(name: str) -> str:
    """The command-line flag of a TrainConfig field."""
    return "--" + name.replace("_", "-")


def check_model(config: TrainConfig) -> None:
    """The model is registered and takes every key of --model-args."""
    from steer.models import MODELS
    from steer.models.registry import model_options

    if config.model not in MODELS:
        raise ValueError(f"--model {config.model}: no such model; registered: {', '.join(sorted(MODELS))}")
    accepted = model_options(config.model)
    unknown = sorted(set(config.model_args) - set(accepted))
    if unknown:
        raise ValueError(f"--model-args: {config.model} takes no {', '.join(unknown)}; it accepts "
                         f"{', '.join(accepted)}")
