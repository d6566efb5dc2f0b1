"""Memory layout on the CPU: 2-d convolutions in channels-last (NHWC) run faster there, batch
normalisation in channels-last does not.

PyTorch's channels-last batch-norm kernels reduce across the batch and image with the channels
innermost; with PilotNet's narrow first layers (24 and 36 channels over 31x98 and 14x47 pixels) that
is 3-4x slower than the channels-first kernel on the same bf16 tensor and scales poorly over threads
(a cnn-lstm training step at bf16 on a 2-core Xeon: the backward pass of its ten batch norms took 82 of
218 ms). `BatchNorm2d` therefore normalises such a batch in channels-first layout while training, its
gradient converted back on the way down, so the convolutions on either side keep their layout. Where
the conversions cost more than they save it stays channels-last, as measured on the Xeon (cnn-lstm
training frames/s, 2 threads, one run): at fp32, whose copies move twice the bytes (283 channels-last,
245 converting every layer), and on maps under 500 pixels, the deeper layers (bf16: 765 converting the
first two layers, 734 all five, 595 none; channels-first throughout 738). The values are the
channels-first kernel's; eval mode (a per-channel affine map) stays in the input's layout.

For driving one frame at a time, `for_inference` folds each batch norm into the convolution before
it and puts the convolutions in channels-last: the same predictions within float rounding, about a
quarter faster (bench/stream.py).
"""
from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

CHANNELS_LAST, CHANNELS_FIRST = torch.channels_last, torch.contiguous_format


class _Relayout(torch.autograd.Function):
    """`x` in layout `to`, its gradient handed back in layout `back`."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, to: torch.memory_format, back: torch.memory_format) -> torch.Tensor:
        ctx.back = back
        return x.contiguous(memory_format=to)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad.contiguous(memory_format=ctx.back), None, None


MIN_PIXELS = 500  # smaller maps stay channels-last (see above)


def _relaid(x: torch.Tensor) -> bool:
    """Whether a training batch is normalised in channels-first layout: a channels-last bf16 or fp16 one of
    at least MIN_PIXELS pixels a channel."""
    return (x.dim() == 4 and x.dtype in (torch.bfloat16, torch.float16) and x.shape[2] * x.shape[3] >= MIN_PIXELS
            and x.is_contiguous(memory_format=CHANNELS_LAST) and not x.is_contiguous())


class BatchNorm2d(nn.BatchNorm2d):
    """nn.BatchNorm2d that trains a channels-last low-precision batch through the channels-first kernels."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and _relaid(x)):
            return super().forward(x)
        y = super().forward(_Relayout.apply(x, CHANNELS_FIRST, CHANNELS_LAST))
        return _Relayout.apply(y, CHANNELS_LAST, CHANNELS_FIRST)


def to_channels_last(model: nn.Module) -> None:
    """2-d convolutions in NHWC layout, faster on CPUs and GPUs; a Conv3d's 5-d weight refuses the format."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            module.to(memory_format=CHANNELS_LAST)


def for_inference(model: nn.Module) -> nn.Module:
    """A copy of `model` in eval mode for streaming: each batch norm that follows a 2-d convolution in a
    Sequential folded into it, the convolutions in channels-last."""
    model = copy.deepcopy(model).eval()
    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        for i in range(len(seq) - 1):
            if type(seq[i]) is nn.Conv2d and isinstance(seq[i + 1], nn.BatchNorm2d):
                seq[i], seq[i + 1] = fuse_conv_bn_eval(seq[i], seq[i + 1]), nn.Identity()
    to_channels_last(model)
    return model
