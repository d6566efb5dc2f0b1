"""The recurrent core every temporal model shares: an LSTM, GRU or plain RNN with its options, its
state as a tuple of (layers x directions, B, hidden) tensors, and a cheap path for one frame.

Streaming runs one frame per call; `nn.LSTM` and friends cost several times a bare cell step there
(0.08 against 0.024 ms on one CPU thread), so a single frame in eval mode goes through the cell
functions with the same weights.
"""
from __future__ import annotations

import torch
from torch import nn

from steer.models.base import State, SteerModel

CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}
CELL_STEPS = {"lstm": torch.lstm_cell, "gru": torch.gru_cell, "rnn": torch.rnn_tanh_cell}


class RecurrentCore(nn.Module):
    def __init__(self, inputs: int, cell: str = "lstm", hidden: int = 64, layers: int = 1, dropout: float = 0.0,
                 bidirectional: bool = False):
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"unknown cell {cell!r}; choose from {', '.join(CELLS)}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.cell, self.hidden, self.layers = cell, hidden, layers
        self.bidirectional, self.dropout = bidirectional, dropout
        # PyTorch applies dropout between layers only: with one layer it would do nothing and warn
        self.rnn = CELLS[cell](inputs, hidden, num_layers=layers, batch_first=True, bidirectional=bidirectional,
                               dropout=dropout if layers > 1 else 0.0)
        self.width = hidden * (2 if bidirectional else 1)

    def config(self) -> dict:
        return {"cell": self.cell, "hidden": self.hidden, "layers": self.layers, "dropout": self.dropout,
                "bidirectional": self.bidirectional}

    @property
    def state_size(self) -> int:
        """Tensors in the state: h and c for an LSTM, h for the others."""
        return 2 if self.cell == "lstm" else 1

    def initial_state(self, batch_size: int) -> tuple[torch.Tensor, ...]:
        zeros = torch.zeros(self.layers * (2 if self.bidirectional else 1), batch_size, self.hidden)
        return (zeros, zeros.clone()) if self.cell == "lstm" else (zeros,)

    def forward(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """Outputs (B, T, width) and the new state for inputs x (B, T, F)."""
        if x.shape[1] == 1 and not self.training and not self.bidirectional:
            return self._step(x[:, 0], state or self.initial_state(x.shape[0]))
        if state is not None and self.cell != "lstm":
            state = state[0]  # GRU and RNN take a bare tensor
        out, state = self.rnn(x, state)
        return out, state if isinstance(state, tuple) else (state,)

    def _step(self, x: torch.Tensor, state: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        step, new = CELL_STEPS[self.cell], []
        for layer in range(self.layers):
            weights = [getattr(self.rnn, f"{name}_l{layer}")
                       for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            if self.cell == "lstm":
                x, c = step(x, (state[0][layer], state[1][layer]), *weights)
                new.append((x, c))
            else:
                x = step(x, state[0][layer], *weights)
                new.append((x,))
        return x[:, None], tuple(torch.stack(parts) for parts in zip(*new))


class RecurrentModel(SteerModel):
    """A model whose memory is a RecurrentCore in `self.core`: its state starts as the core's, and a
    bidirectional core makes it offline only."""
    core: RecurrentCore

    @property
    def streamable(self) -> bool:
        return not self.core.bidirectional

    def core_state(self, batch_size: int) -> tuple[torch.Tensor, ...]:
        return self.core.initial_state(batch_size)
