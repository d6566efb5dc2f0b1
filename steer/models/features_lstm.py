"""Chauffeur-style (Udacity's second challenge, 2016): a frozen image encoder turns each frame into a
feature vector once, and a recurrent network learns from long windows of those vectors (50 frames and
more), which training can afford because it never runs the encoder.

The encoder (`encoder` option) is one of:

- a path to a steer `pilotnet` checkpoint folder: its convolutional trunk, with the checkpoint's
  `inputs`; a trunk trained on frame differences carries the previous frame, so its features are
  computed over each whole drive in time order, as it streams;
- `onnx:PATH`: an image backbone exported to ONNX elsewhere (e.g. an ImageNet ResNet-18 without its
  classifier), run with ONNX Runtime. Its first input gets float (N, 3, H, W) RGB scaled to 0..1 and
  normalised with ImageNet's mean and std, at the frame cache's size, or resized (bilinear) to the
  graph's own height and width where those are fixed; a fixed batch dimension must be 1. Its first
  output, flattened per frame, is the feature vector;
- nothing: a fresh, untrained PilotNet trunk, whose random features are only good for tests.

steer never downloads weights: a missing file is an error. timm backbones are not built in (timm is
not a dependency): export one to ONNX where timm is installed. Frozen means no gradient, eval mode
always, and outside the optimizer. The encoder's configuration is part of the model's config and its
weights (an ONNX graph's bytes included) of the model's weights, so a checkpoint stands alone.

Training and evaluation feed the model the features stored beside the frame cache (`inputs_of`, see
steer/data/features.py): float (B, T, F). Streaming and export feed uint8 frames (B, T, C, H, W), which
go through the encoder inside the model. A model with an ONNX backbone streams with the PyTorch back
end (the backbone runs in ONNX Runtime) but cannot be exported as one ONNX step graph.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from steer.data.cache import CachedDrive
from steer.data.features import drive_features
from steer.models.base import State
from steer.models.pilotnet import pilotnet_trunk, trunk_features
from steer.models.recurrent import RecurrentCore, RecurrentModel
from steer.models.registry import load_model, register_model

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
KINDS = ("pilotnet", "onnx")


class OnnxBackbone(nn.Module):
    """An image backbone in an ONNX graph, run with ONNX Runtime. The graph's bytes are a buffer, so
    they are saved and loaded with the model's weights."""

    def __init__(self, size: int):
        super().__init__()
        self.register_buffer("graph", torch.zeros(size, dtype=torch.uint8))
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.session = None
        self.register_load_state_dict_post_hook(OnnxBackbone._forget_session)

    @staticmethod
    def _forget_session(module: "OnnxBackbone", incompatible_keys) -> None:
        module.session = None  # new bytes: open them afresh

    def _session(self):
        if self.session is None:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = torch.get_num_threads()
            try:
                self.session = ort.InferenceSession(self.graph.cpu().numpy().tobytes(), options,
                                                    providers=["CPUExecutionProvider"])
            except Exception as error:  # ONNX Runtime raises its own kinds
                raise ValueError(f"the ONNX backbone cannot be opened: {error}") from error
        return self.session

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features (N, F) of frames x (N, 3, H, W) scaled to -1..1."""
        session = self._session()
        graph_input = session.get_inputs()[0]
        image = ((x + 1) / 2 - self.mean) / self.std
        size = tuple(graph_input.shape[2:])
        if all(isinstance(s, int) for s in size) and size != tuple(image.shape[2:]):
            image = F.interpolate(image, size=size, mode="bilinear", align_corners=False)
        image = image.cpu().numpy()
        rows = 1 if graph_input.shape[0] == 1 else max(len(image), 1)
        out = np.concatenate([session.run(None, {graph_input.name: image[i:i + rows]})[0]
                              for i in range(0, len(image), rows)])
        return torch.from_numpy(out.reshape(len(out), -1)).to(x.device)


def resolve_encoder(spec: str | dict | None, frame_shape: tuple[int, int, int]) -> tuple[dict, dict]:
    """The encoder's configuration and, where `spec` names a file, the weights read from it (a
    configuration alone gets its weights from the checkpoint, or fresh ones)."""
    if spec is None:
        return {"kind": "pilotnet", "inputs": "frames"}, {}
    if isinstance(spec, dict):
        if spec.get("kind") not in KINDS:
            raise ValueError(f"encoder kind {spec.get('kind')!r} is not one of {', '.join(KINDS)}")
        return dict(spec), {}
    if spec.startswith("timm:"):
        raise ValueError("timm backbones are not supported (timm is not installed with steer): export the "
                         "backbone to ONNX where timm is, and give encoder onnx:PATH")
    if spec.startswith("onnx:"):
        path = _existing(Path(spec.removeprefix("onnx:")), "ONNX file")
        graph = torch.frombuffer(bytearray(path.read_bytes()), dtype=torch.uint8)
        return {"kind": "onnx", "bytes": len(graph), "source": str(path)}, {"graph": graph}
    return _pilotnet_trunk(_existing(Path(spec), "pilotnet checkpoint"), frame_shape)


def _existing(path: Path, what: str) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"the encoder's {what} {path} does not exist; steer never downloads weights, "
                                "so copy or export it to this machine and give its path")
    return path


def _pilotnet_trunk(folder: Path, frame_shape: tuple[int, int, int]) -> tuple[dict, dict]:
    model = load_model(folder)
    if model.registry_name != "pilotnet":
        raise ValueError(f"the encoder {folder} is a {model.registry_name} checkpoint; features-lstm takes a "
                         "pilotnet checkpoint's trunk, or onnx:PATH")
    if model.frame_shape != frame_shape:
        raise ValueError(f"the encoder {folder} sees frames {model.frame_shape}, these are {frame_shape}")
    return {"kind": "pilotnet", "inputs": model.inputs, "source": str(folder)}, model.trunk.state_dict()


@register_model("features-lstm")
class FeaturesLstm(RecurrentModel):
    def __init__(self, targets: list[str], frame_shape=(3, 66, 200), encoder: str | dict | None = None,
                 features: int = 128, cell: str = "lstm", hidden: int = 64, layers: int = 1, dropout: float = 0.0,
                 bidirectional: bool = False):
        spec, weights = resolve_encoder(encoder, tuple(frame_shape))
        super().__init__(targets, frame_shape, spec.get("inputs", "frames"))
        if spec["kind"] == "onnx" and self.input_channels != 3:
            raise ValueError(f"an ONNX backbone takes RGB frames, these have {frame_shape[0]} channels")
        self.encoder = (pilotnet_trunk(self.input_channels) if spec["kind"] == "pilotnet"
                        else OnnxBackbone(spec["bytes"]))
        if weights:
            self.encoder.load_state_dict(weights)
        self.encoder.requires_grad_(False).eval()
        if "width" not in spec:  # a rebuilt ONNX backbone has no bytes to run until its weights are loaded
            spec["width"] = trunk_features(self.encoder, (self.input_channels, *self.frame_shape[1:]))
        self.spec, self.features = spec, features
        self.project = nn.Sequential(nn.LayerNorm(spec["width"]), nn.Linear(spec["width"], features), nn.ReLU())
        self.core = RecurrentCore(features, cell, hidden, layers, dropout, bidirectional)
        self.head = nn.Linear(self.core.width + features, len(targets))

    def config(self) -> dict:
        config = {**super().config(), **self.core.config(), "encoder": self.spec, "features": self.features}
        del config["inputs"]  # the encoder's, part of its spec
        return config

    @property
    def feature_width(self) -> int:
        return self.spec["width"]

    def require_exportable(self) -> None:
        super().require_exportable()
        if self.spec["kind"] == "onnx":  # ONNX Runtime runs it, outside what torch.onnx can trace
            raise ValueError("a features-lstm model with an ONNX backbone cannot be exported as one ONNX graph: "
                             "stream it with the PyTorch back end (steer run without --onnx)")

    def train(self, mode: bool = True) -> "FeaturesLstm":
        super().train(mode)
        self.encoder.eval()  # frozen, batch statistics and dropout included
        return self

    def inputs_of(self, drive: CachedDrive) -> np.ndarray:
        return drive_features(drive, self)

    def forward(self, inputs: torch.Tensor, state: State = None,
                teacher: torch.Tensor | None = None) -> tuple[torch.Tensor, State]:
        """uint8 frames (B, T, C, H, W) go through the encoder; float features (B, T, F), as stored,
        go straight to the recurrent core (the state then holds the core's alone)."""
        if inputs.dtype == torch.uint8:
            return super().forward(inputs, state, teacher)
        if inputs.dim() != 3 or inputs.shape[-1] != self.feature_width:
            raise ValueError(f"features-lstm takes uint8 frames (B, T, C, H, W) or features (B, T, "
                             f"{self.feature_width}), got {inputs.dtype} {tuple(inputs.shape)}")
        return self.sequence(inputs.float(), state)

    def predict(self, x: torch.Tensor, diffs: torch.Tensor | None, state: State,
                teacher: torch.Tensor | None = None) -> tuple[torch.Tensor, State]:
        return self.sequence(self._encoded(x), state)

    def _encoded(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder features (B, T, F) of network inputs x (B, T, input_channels, H, W)."""
        return self.encoder(x.flatten(0, 1)).view(*x.shape[:2], -1)

    def sequence(self, features: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """preds (B, T, K) and the core state from encoder features (B, T, F)."""
        feats = self.project(features)
        out, state = self.core(feats, state)
        return self.head(torch.cat([out, feats], dim=-1)), state

    def encode(self, frames: torch.Tensor, carried: State) -> tuple[torch.Tensor, tuple]:
        """Encoder features (B, T, F) of uint8 frames (B, T, C, H, W), and the previous frame carried on."""
        frames = frames.to(self.target_mean.device)
        x, _, carried = self.prepare(frames, carried)
        return self._encoded(x), carried

    def encoder_key(self) -> str:
        """A digest of the encoder's configuration, the frame shape and the encoder's weights."""
        described = {k: v for k, v in self.spec.items() if k != "source"}  # a copied file encodes alike
        digest = hashlib.sha256(json.dumps([described, list(self.frame_shape)], sort_keys=True).encode())
        for name, tensor in sorted(self.encoder.state_dict().items()):
            digest.update(name.encode() + tensor.cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()[:16]

    def encoder_description(self) -> dict:
        return {**self.spec, "frame_shape": list(self.frame_shape)}
