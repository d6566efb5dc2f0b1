"""Inside the network: gradient health through time (steer/train/health.py), diagnosis of a checkpoint,
saliency and attribution over time (steer/evaluate/explain.py), the memory task."""
import json

import numpy as np
import pytest
import torch
from torch import nn

from steer.models.recurrent import RecurrentCore
from steer.train import health
from steer.train.config import TrainConfig
from steer.train.loop import train


def _linear_rnn(weight: float) -> RecurrentCore:
    """One unit, h_t = tanh(x_t + weight * h_{t-1}): at zero input and state, tanh' = 1, so the
    gradient through each step is exactly `weight`."""
    core = RecurrentCore(1, "rnn", hidden=1)
    with torch.no_grad():
        for name, p in core.rnn.named_parameters():
            p.fill_({"weight_ih_l0": 1.0, "weight_hh_l0": weight}.get(name, 0.0))
    return core


def test_state_gradients_of_a_linear_rnn_decay_by_its_recurrent_weight():
    core, states = _linear_rnn(0.5), []
    out, _ = health.unroll(core, torch.zeros(1, 12, 1), None, states)
    curve = health.state_gradient_curve(out[:, -1].sum(), states)
    assert np.allclose(curve, 0.5 ** np.arange(12), rtol=1e-6)
    assert health.effective_memory(curve) == 7  # 0.5^7 = 0.0078 is the first value under 1%
    assert health.effective_memory(np.ones(5)) == 5  # never falls: at least the window


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_unrolled_core_and_its_state_gradients_match_pytorchs_own_sequence(cell):
    torch.manual_seed(0)
    core, x, states = RecurrentCore(3, cell, hidden=4, layers=2).eval(), torch.randn(2, 6, 3), []
    out, last = health.unroll(core, x, None, states)
    expected, expected_last = core(x, None)
    assert torch.allclose(out, expected, atol=1e-5) and all(torch.allclose(a, b, atol=1e-5)
                                                             for a, b in zip(last, expected_last))
    curve = health.state_gradient_curve(out[:, -1].sum(), states)
    for k in range(6):  # autograd through nn.LSTM/GRU/RNN from the state k steps back, on the steps after it
        start = tuple(s.detach().requires_grad_() for s in states[5 - k])
        rest, _ = core.rnn(x[:, 6 - k:], start if cell == "lstm" else start[0]) if k else (start[0][-1:], None)
        grads = torch.autograd.grad(rest[:, -1].sum() if k else rest[-1].sum(), start, allow_unused=True)
        norm = float(torch.sqrt(sum((g ** 2).sum() for g in grads if g is not None)))
        assert curve[k] == pytest.approx(norm, rel=1e-4)


def test_dead_units_are_counted_exactly():
    net = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 3), nn.ELU())
    with torch.no_grad():  # inputs are positive: units 2 and 3 of the ReLU never fire; the ELU's unit 0 never does
        net[0].weight.copy_(torch.tensor([[1.0, 0], [0, 1], [-1, 0], [0, -1]]))
        net[0].bias.zero_()
        net[2].weight.copy_(torch.tensor([[-1.0, -1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0]]))
        net[2].bias.zero_()
    with health.watching(net) as summary:
        net(torch.rand(50, 2) + 0.1)
        net(torch.rand(7, 2) + 0.1)
    assert summary["dead_units"] == {"1": 0.5, "3": pytest.approx(1 / 3)}
    assert summary["dead_fraction"] == pytest.approx(3 / 7)


def test_gate_saturation_is_exact_on_crafted_gates():
    assert health.gate_saturation(torch.tensor([0.005, 0.01, 0.5, 0.99, 0.995])) == (2, 5)
    core = RecurrentCore(2, "lstm", hidden=3)
    with torch.no_grad():  # pre-activations: input gate +10, forget gate 0, cell 0, output gate -10
        core.rnn.weight_ih_l0.zero_()
        core.rnn.weight_hh_l0.zero_()
        core.rnn.bias_hh_l0.zero_()
        core.rnn.bias_ih_l0.copy_(torch.cat([torch.full((3,), 10.0), torch.zeros(6), torch.full((3,), -10.0)]))
    model = nn.Module()
    model.core = core
    with health.watching(model) as summary:
        model.core(torch.randn(4, 5, 2), None)
    assert summary["gate_saturation"] == {"layer0/input": 1.0, "layer0/forget": 0.0, "layer0/output": 1.0}


def test_update_ratios_and_layer_gradient_norms():
    net = nn.Sequential(nn.Linear(2, 2, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[3.0, 0], [0, 4]]))
    before = health.weights_of(net)
    with torch.no_grad():
        net[0].weight.add_(torch.tensor([[0.5, 0], [0, 0]]))
    assert health.update_ratios(net, before) == {"0": pytest.approx(0.1)}
    net[0].weight.grad = torch.tensor([[3.0, 0], [0, 4]])
    assert health.layer_grad_norms(net) == {"0": pytest.approx(5.0)}


def _config(cache, out, **changes) -> TrainConfig:
    values = dict(cache=str(cache.root), out=str(out), model="cnn-lstm", model_args={"hidden": 8, "features": 16},
                  window=5, batch_size=2, epochs=1, patience=5, split=[0.5, 0.25, 0.25], seed=3, clip_grad_norm=0.5)
    values.update(changes)
    return TrainConfig(**values)


def test_training_records_gradient_health_every_n_steps(tiny_cache, tmp_path):
    run = train(_config(tiny_cache, tmp_path / "run", health_every=3))
    epoch, = json.loads((run / "history.json").read_text())
    found = epoch["health"]
    assert [c["step"] for c in found["checks"]] == [0, 3, 6, 9, 12, 15][:len(found["checks"])]
    first = found["checks"][0]
    assert len(first["decay"]) == 5 and first["decay"][0] == 1.0 and 0 <= first["effective_memory"] <= 5
    assert "core.rnn" in first["grad_norm"] and "core.rnn" in first["update_ratio"]
    assert set(found["gate_saturation"]) == {"layer0/input", "layer0/forget", "layer0/output"}
    assert "encoder.appearance.0.2" in found["dead_units"] and 0 <= found["dead_fraction"] <= 1
    # clipping events carry the norm before clipping, which the per-layer norms before clipping add up to
    assert all(c["norm_before"] > 0.5 for c in found["clips"])
    clipped = {c["step"]: c["norm_before"] for c in found["clips"]}
    for check in found["checks"]:
        total = np.sqrt(sum(v ** 2 for v in check["grad_norm"].values()))
        assert total == pytest.approx(clipped.get(check["step"], total), rel=1e-3)
    quiet = train(_config(tiny_cache, tmp_path / "quiet"))
    assert "health" not in json.loads((quiet / "history.json").read_text())[0]
