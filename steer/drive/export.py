"""ONNX export of one streaming step, the state as explicit inputs and outputs (`Pilot` runs it with
ONNX Runtime).

The graph takes one uint8 frame (1, C, H, W), already at the model's size, and the state tensors
(`state_0`, `state_1`, ...: for an LSTM h and c per layer, then the previous frame when the model
looks at motion); it returns the predictions in the targets' units and the new state
(`state_0_out`, ...). Normalisation is inside, as in the PyTorch model.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from steer.data.cache import replacing
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
