"""ONNX export of one streaming step, the state as explicit inputs and outputs (`Pilot` runs it with
ONNX Runtime).

The graph takes one uint8 frame (1, C, H, W), already at the model's size, and the state tensors
(`state_0`, `state_1`, ...: for an LSTM h and c per layer, then the previous frame when the model
looks at motion); it returns the predictions in the targets' units and the new state
(`state_0_out`, ...). Normalisation is inside, as in the PyTorch model.
"""
from __future__ import annotations

import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from steer.durable import check_room, replacing
from steer.models import SteerModel


class StepGraph(nn.Module):
    def __init__(self, model: SteerModel):
        super().__init__()
        self.model = model

    def forward(self, frame: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        preds, new_state = self.model(frame[:, None], state or None)
        return (self.model.to_units(preds[:, 0]),) + tuple(new_state or ())


def export_onnx(model: SteerModel, out: str | Path) -> Path:
    """Write the step graph of `model` to `out`; refused first where its weights would not fit."""
    model = model.eval()
    model.require_exportable()
    out = Path(out)
    check_room(out.parent, sum(v.nbytes for v in model.state_dict().values()))
    state = model.initial_state(1)
    frame = torch.zeros(1, *model.frame_shape, dtype=torch.uint8)
    names = [f"state_{i}" for i in range(len(state))]
    with replacing(out) as tmp, warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(StepGraph(model), (frame, *state), str(tmp), input_names=["frame", *names],
                          output_names=["preds", *(f"{n}_out" for n in names)], dynamo=True, verbose=False,
                          external_data=False)  # one self-contained file
    return out


def _calibration_feeds(model: SteerModel, graph: Path, drives: list[np.ndarray]) -> Iterator[dict[str, np.ndarray]]:
    """The step graph's inputs over `drives` (frames (N, C, H, W) uint8), each drive streamed from the
    initial state through the float graph, so the carried state is calibrated on values it takes."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    for frames in drives:
        state = [s.numpy() for s in model.initial_state(1)]
        for frame in frames:
            feeds = {"frame": np.ascontiguousarray(frame)[None], **{f"state_{i}": s for i, s in enumerate(state)}}
            yield feeds
            _, *state = session.run(None, feeds)


def _kept_float(graph: Path) -> list[str]:
    """Nodes left in float: the recurrent core's (`model.core.*` weights), whose state feeds back every
    frame, so rounding there would build up; and 3-d convolutions, which ONNX Runtime runs slower in
    int8 than in float on the CPU (komanda's: 0.8x)."""
    model = onnx.load(str(graph))
    dims = {w.name: len(w.dims) for w in model.graph.initializer}
    return [n.name for n in model.graph.node if any(i.startswith("model.core.") for i in n.input)
            or (n.op_type == "Conv" and dims.get(n.input[1]) == 5)]


def quantise_int8(model: SteerModel, graph: str | Path, drives: list[np.ndarray]) -> Path:
    """A statically quantised copy of `model`'s step graph `graph`, `<name>.int8.onnx` beside it:
    convolutions and dense layers in int8 (QDQ; weights per output channel, activations by the ranges
    they take while `drives` stream through the float graph), which ONNX Runtime runs on the CPU's
    int8 dot-product units; what `_kept_float` names stays in float."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Frames(CalibrationDataReader):
        def __init__(self):
            self.feeds = _calibration_feeds(model, graph, drives)

        def get_next(self) -> dict | None:
            return next(self.feeds, None)

    graph = Path(graph)
    quantised = graph.with_name(graph.stem + ".int8.onnx")
    with replacing(quantised) as tmp, tempfile.TemporaryDirectory() as folder:
        prepared = Path(folder) / "prepared.onnx"
        quant_pre_process(str(graph), str(prepared))  # shapes and fused nodes: what the quantiser expects
        quantize_static(str(prepared), str(tmp), Frames(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        op_types_to_quantize=["Conv", "Gemm", "MatMul"], nodes_to_exclude=_kept_float(prepared))
    return quantised
