"""`Pilot`: the one streaming path. One frame in, the targets out, the recurrent state carried from
frame to frame exactly as over a training window, and reset where a drive breaks.

Frames of any size are cropped and resized by the same function the importer uses (with the crop the
training cache used, which the checkpoint records), then normalised inside the model as in training:
there is no second copy of the preprocessing.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from steer.models import SteerModel, load_model
from steer.models.layout import for_inference
from steer.sources.images import ASPECT_TOLERANCE, fit


class TorchStep:
    """The PyTorch back end: one frame (1, C, H, W) uint8 in, predictions (K,) in units out; it steps a copy
    of the model with its batch norms folded into the convolutions, in channels-last (for_inference)."""

    def __init__(self, model: SteerModel):
        self.model, self.state = for_inference(model), None

    def reset(self) -> None:
        self.state = None

    @torch.inference_mode()  # cheaper than no_grad per call: no version counters on the state it carries
    def __call__(self, frame: np.ndarray) -> np.ndarray:
        preds, self.state = self.model(torch.from_numpy(frame)[:, None], self.state)
        return self.model.to_units(preds[0, 0]).numpy()


class OnnxStep:
    """The ONNX Runtime back end: the same call as `TorchStep`, the state kept as arrays."""

    def __init__(self, path: str | Path, model: SteerModel, threads: int = 0):
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.initial = [s.numpy() for s in model.initial_state(1)]
        self.state = list(self.initial)

    def reset(self) -> None:
        self.state = list(self.initial)

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        feeds = {"frame": frame, **{f"state_{i}": s for i, s in enumerate(self.state)}}
        preds, *self.state = self.session.run(None, feeds)
        return preds[0]


class Pilot:
    """A checkpoint driven one frame at a time: `step(frame, time_s)` returns the targets in their units with
    the recurrent state carried from the frame before, `reset()` starts a new drive. The state also resets
    where time goes back or jumps by more than `max_gap_s`; frames are cropped and resized as the training
    cache made its frames. The same predictions as the model over the whole drive offline, for every
    registered model; bidirectional ones are refused."""

    def __init__(self, checkpoint: str | Path | SteerModel, crop: tuple[float, float] | None = None,
                 max_gap_s: float = 1.0, onnx: str | Path | None = None, onnx_threads: int = 0, cached: bool = False):
        """`checkpoint`: a checkpoint folder, or a model in memory (one being trained, driven between epochs);
        `crop`: fractions of the height cut from the top and bottom of each frame (default: as the training
        cache cut its frames, which the checkpoint records; a crop other than that is warned of);
        `onnx`: a graph written by `steer export` for it, run with ONNX Runtime on `onnx_threads` threads
        (0: its default); `cached`: the frames come from a frame cache, made already (not cropped again)."""
        self.model = (checkpoint if isinstance(checkpoint, SteerModel) else load_model(checkpoint)).eval()
        self.model.require_streamable(f"streaming {checkpoint}")
        self.size = tuple(self.model.frame_shape[1:])
        self.made = {} if cached else self.model.preprocess or {}
        self.crop, self.max_gap_s = self._crop(crop, checkpoint), max_gap_s
        self.backend = OnnxStep(onnx, self.model, onnx_threads) if onnx else TorchStep(self.model)
        self.last_time_s: float | None = None
        self.shape_checked = cached

    def _crop(self, crop: tuple[float, float] | None, checkpoint) -> tuple[float, float]:
        """The crop asked for, or the training cache's; a disagreement between the two is warned of."""
        trained = self.made.get("crop")
        if "crops" in self.made and crop is None:
            warnings.warn(f"{checkpoint} was trained on frames cropped in several ways ({self.made['crops']}): "
                          "frames are not cropped; give the crop of the camera it drives")
        if crop is None:
            return tuple(trained) if trained is not None else (0.0, 0.0)
        if trained is not None and tuple(crop) != tuple(trained):
            warnings.warn(f"{checkpoint} was trained on frames cropped {tuple(trained)} (top, bottom), and is given "
                          f"a crop of {tuple(crop)}: it sees the road otherwise than in training")
        return tuple(crop)

    def _check_shape(self, shape: tuple[int, ...]) -> None:
        """Warn, once, where frames of another aspect than the training camera's come in: they are stretched."""
        self.shape_checked = True
        trained = self.made.get("source_shape")
        if trained and abs(shape[0] / shape[1] / (trained[0] / trained[1]) - 1) > ASPECT_TOLERANCE:
            warnings.warn(f"frames of {shape[1]}x{shape[0]} pixels, where the training frames were made from "
                          f"{trained[1]}x{trained[0]}: they are stretched otherwise than in training")

    @property
    def targets(self) -> list[str]:
        return self.model.targets

    def reset(self) -> None:
        """Forget the state: the next frame starts a new drive."""
        self.backend.reset()
        self.last_time_s = None

    def step(self, frame: np.ndarray, time_s: float) -> dict[str, float]:
        """Predictions for one RGB uint8 frame (H, W, 3) taken at `time_s`, in the targets' units."""
        if self.last_time_s is not None and not 0 < time_s - self.last_time_s <= self.max_gap_s:
            self.reset()  # a gap or a jump back in time: a new drive as far as the state is concerned
        self.last_time_s = time_s
        if not self.shape_checked:
            self._check_shape(frame.shape)
        if frame.shape[:2] != self.size or any(self.crop):
            frame = fit(frame, self.size, self.crop)
        x = np.ascontiguousarray(frame.transpose(2, 0, 1))[None]
        return dict(zip(self.targets, self.backend(x).tolist()))
