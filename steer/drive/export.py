"""ONNX export of one streaming step, the state as explicit inputs and outputs, and ONNX Runtime as a
back end of `Pilot`.

The graph takes one uint8 frame (1, C, H, W), already at the model's size, and the state tensors
(`state_0`, `state_1`, ...: for an LSTM h and c per layer, then the previous frame when the model
looks at motion); it returns the predictions in the targets' units and the new state
(`state_0_out`, ...). Normalisation is inside, as in the PyTorch model.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from steer.data.cache import FrameCache, replacing
from steer.models import SteerModel


class StepGraph(nn.Module):
    def __init__(self, model: SteerModel):
        super().__init__()
        self.model = model

    def forward(self, frame: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        preds, new_state = self.model(frame[:, None], state or None)
        return (self.model.to_units(preds[:, 0]),) + tuple(new_state or ())


def export_onnx(model: SteerModel, out: str | Path) -> Path:
    """Write the step graph of `model` to `out`."""
    model = model.eval()
    model.require_exportable()
    out = Path(out)
    state = model.initial_state(1)
    frame = torch.zeros(1, *model.frame_shape, dtype=torch.uint8)
    names = [f"state_{i}" for i in range(len(state))]
    with replacing(out) as tmp, warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(StepGraph(model), (frame, *state), str(tmp), input_names=["frame", *names],
                          output_names=["preds", *(f"{n}_out" for n in names)], dynamo=True, verbose=False,
                          external_data=False)  # one self-contained file
    return out


def quantise_int8(graph: str | Path) -> Path:
    """A dynamically quantised copy of `graph` (int8 weights), `<name>.int8.onnx` beside it."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = Path(graph)
    quantised = graph.with_name(graph.stem + ".int8.onnx")
    quantize_dynamic(str(graph), str(quantised), weight_type=QuantType.QInt8)
    return quantised


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


def int8_cost(checkpoint: str | Path, graph: str | Path, quantised: str | Path, cache: str | Path,
              drive_name: str) -> dict:
    """RMSE per target of the float and the int8 graph on one drive, streamed, and between the two."""
    from steer.drive.pilot import Pilot

    drive, = FrameCache(cache).by_name([drive_name])
    runs = {}
    for label, path in (("float", graph), ("int8", quantised)):
        pilot = Pilot(checkpoint, onnx=path)
        runs[label] = np.array([list(pilot.step(np.asarray(f).transpose(1, 2, 0), t).values())
                                for f, t in zip(drive.frames, drive.timestamps_s)])
    truth = drive.targets(pilot.targets)
    rmse = lambda a, b: dict(zip(pilot.targets, np.sqrt(np.mean((a - b) ** 2, axis=0)).tolist()))  # noqa: E731
    return {"drive": drive_name, "frames": len(truth), "float_rmse": rmse(runs["float"], truth),
            "int8_rmse": rmse(runs["int8"], truth), "int8_vs_float_rmse": rmse(runs["int8"], runs["float"])}
