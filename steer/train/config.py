"""Training configuration: one flat set of named values with defaults, saved beside every run."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields


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
    gpu_cache: bool = True  # hold the training inputs on the GPU when they take under half its free memory

    @staticmethod
    def from_dict(d: dict) -> "TrainConfig":
        known = {f.name for f in fields(TrainConfig)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown training option(s) {unknown}; known: {sorted(known)}")
        return TrainConfig(**d)

    def to_dict(self) -> dict:
        return asdict(self)
