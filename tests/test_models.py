import numpy as np
import pytest
import torch
from conftest import MODEL_VARIANTS, OFFLINE_VARIANTS

from steer.models import create_model, detach_state, reset_state

TARGETS = ["steering", "speed", "throttle"]
SHAPE = (3, 66, 200)
VARIANTS = MODEL_VARIANTS


def _frames(b, t, seed=0):
    return torch.randint(0, 256, (b, t, *SHAPE), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name,kwargs", VARIANTS + OFFLINE_VARIANTS)
def test_contract_forward_and_backward(name, kwargs):
    model = create_model(name, targets=TARGETS, frame_shape=SHAPE, **kwargs)
    preds, state = model(_frames(2, 3), None)
    assert preds.shape == (2, 3, len(TARGETS))
    assert state is None or all(s.shape[1] == 2 for s in state)  # batch in dimension 1
    preds2, _ = model(_frames(2, 3, seed=1), detach_state(state))
    (preds.square().mean() + preds2.square().mean()).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]  # a frozen encoder's have none
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert torch.isfinite(preds).all()


@pytest.mark.parametrize("name,kwargs", VARIANTS)
def test_one_long_forward_equals_windows_with_the_state_carried(name, kwargs):
    model = create_model(name, targets=TARGETS, frame_shape=SHAPE, **kwargs).eval()
    frames = _frames(2, 9)
    with torch.no_grad():
        whole, _ = model(frames, None)
        state, parts = None, []
        for start in range(0, 9, 4):
            preds, state = model(frames[:, start:start + 4], state)
            parts.append(preds)
    assert torch.allclose(torch.cat(parts, dim=1), whole, atol=1e-5)


def test_memory_matters_for_recurrent_models():
    model = create_model("cnn-lstm", targets=TARGETS, frame_shape=SHAPE).eval()
    frames = _frames(1, 6)
    with torch.no_grad():
        whole, _ = model(frames, None)
        fresh, _ = model(frames[:, 3:], None)
    assert not torch.allclose(whole[:, 3:], fresh, atol=1e-4)


def test_reset_state_zeroes_only_the_chosen_rows():
    state = (torch.ones(2, 3, 4), torch.ones(1, 3, 5))
    out = reset_state(state, torch.tensor([True, False, True]))
    assert all(s[:, 1].abs().sum() == 0 and s[:, [0, 2]].min() == 1 for s in out)


def test_pilotnet_is_nvidias_size():
    model = create_model("pilotnet", targets=["steering"], frame_shape=SHAPE)
    assert 250_000 < sum(p.numel() for p in model.parameters()) < 255_000


def test_targets_are_normalised_with_statistics_kept_in_the_model():
    model = create_model("pilotnet", targets=TARGETS, frame_shape=SHAPE)
    model.set_target_stats(torch.tensor([0.0, 10.0, 0.2]), torch.tensor([0.5, 4.0, 0.1]))
    y = torch.tensor([[1.0, 18.0, 0.3]])
    assert torch.allclose(model.normalise(y), torch.tensor([[2.0, 2.0, 1.0]]))
    assert torch.allclose(model.to_units(model.normalise(y)), y)
    assert "target_mean" in model.state_dict()


def test_unknown_model_and_cell_are_clear_errors():
    with pytest.raises(KeyError, match="registered: cnn-lstm, features-lstm, komanda, pilotnet"):
        create_model("resnet", targets=TARGETS)
    with pytest.raises(ValueError, match="unknown cell 'tcn'"):
        create_model("cnn-lstm", targets=TARGETS, cell="tcn")


def test_chunked_forward_and_backward_equal_the_unchunked_ones():
    """With the state carried (not detached) between chunks, a sequence cut into windows gives the same
    outputs and gradients as one pass: truncation only comes from detaching, where training asks."""
    model = create_model("cnn-lstm", targets=TARGETS, frame_shape=SHAPE, hidden=8, features=16).eval()
    frames = _frames(2, 9)

    def grads(chunk):
        model.zero_grad()
        state, parts = None, []
        for start in range(0, 9, chunk):
            preds, state = model(frames[:, start:start + chunk], state)
            parts.append(preds)
        torch.cat(parts, dim=1).square().sum().backward()
        return torch.cat(parts, dim=1).detach(), [p.grad.clone() for p in model.parameters()]

    whole, whole_grads = grads(9)
    chunked, chunked_grads = grads(4)
    assert torch.allclose(whole, chunked, atol=1e-5)
    assert all(torch.allclose(a, b, rtol=1e-4, atol=1e-6) for a, b in zip(whole_grads, chunked_grads))


def test_detaching_the_state_cuts_the_gradient_at_the_window_edge():
    model = create_model("cnn-lstm", targets=TARGETS, frame_shape=SHAPE, hidden=8, features=16).eval()
    _, state = model(_frames(1, 3), None)

    def reaches_first_window(carried):
        preds, _ = model(_frames(1, 3, seed=1), carried)
        return torch.autograd.grad(preds.sum(), state[0], allow_unused=True)[0] is not None

    assert reaches_first_window(state)
    assert not reaches_first_window(detach_state(state))


@pytest.mark.parametrize("inputs", ["difference", "both"])
def test_difference_inputs_carry_the_previous_frame(inputs):
    model = create_model("pilotnet", targets=TARGETS, frame_shape=SHAPE, inputs=inputs).eval()
    frames = _frames(1, 4)
    with torch.no_grad():
        whole, _ = model(frames, None)
        _, state = model(frames[:, :2], None)
        carried, _ = model(frames[:, 2:], state)
        fresh, _ = model(frames[:, 2:], None)
    assert torch.allclose(whole[:, 2:], carried, atol=1e-5)
    assert not torch.allclose(whole[:, 2:3], fresh[:, :1], atol=1e-4)  # a first frame has no difference


def test_bidirectional_models_are_refused_for_streaming():
    model = create_model("cnn-lstm", targets=TARGETS, frame_shape=SHAPE, bidirectional=True)
    assert not model.streamable
    with pytest.raises(ValueError, match="bidirectional.*offline"):
        model.require_streamable("streaming")


def test_unknown_inputs_are_a_clear_error():
    with pytest.raises(ValueError, match="unknown inputs 'optical-flow'"):
        create_model("pilotnet", targets=TARGETS, inputs="optical-flow")


@pytest.mark.parametrize("name,kwargs", VARIANTS + OFFLINE_VARIANTS)
def test_validation_batched_across_drives_equals_drive_by_drive(name, kwargs, tiny_cache, monkeypatch):
    from steer.models.sequence import predict_drive, predict_drives
    from steer.train import loop

    torch.manual_seed(0)
    model = create_model(name, targets=TARGETS, frame_shape=SHAPE, **kwargs)
    a, b, c, d = (drive.name for drive in tiny_cache.drives)
    # 20, 9 (after a lead-in of 5), 7 and 4 (lead-in 30) frames in 2 rows of 8 frames: a row takes a new
    # drive mid-way, a drive's last chunk is padded, a row leaves the batch while the other goes on
    drives = tiny_cache.by_name([f"{a}@0:20", f"{b}@5:14", f"{c}@0:7", f"{d}@30:34"])
    batched = []
    monkeypatch.setattr(loop, "predict_drives", lambda *args: batched.append(predict_drives(*args, rows=2, chunk=8))
                        or batched[-1])
    loss, rmse = loop.validation_loss(model, drives, "cpu", "fp32")
    one_by_one = [predict_drive(model, drive) for drive in drives]
    assert [len(p) for p in batched[0]] == [20, 9, 7, 4]
    assert all(np.allclose(x, y, atol=1e-5) for x, y in zip(batched[0], one_by_one))
    monkeypatch.setattr(loop, "predict_drives", lambda *args: one_by_one)
    alone_loss, alone_rmse = loop.validation_loss(model, drives, "cpu", "fp32")
    assert abs(loss - alone_loss) <= 1e-6 and np.allclose(list(rmse.values()), list(alone_rmse.values()), atol=1e-6)


def test_batch_norm_on_a_channels_last_bf16_batch_trains_as_on_a_channels_first_one():
    """The channels-first kernels' values to the bit, the layout of the input kept for the output and gradient."""
    from steer.models.layout import BatchNorm2d

    x = (torch.randn(8, 24, 31, 98, generator=torch.Generator().manual_seed(0)) * 3 + 1).bfloat16()
    grad = torch.randn(x.shape, generator=torch.Generator().manual_seed(1)).bfloat16()
    found = {}
    for layout in (torch.contiguous_format, torch.channels_last):
        torch.manual_seed(0)
        norm = BatchNorm2d(24).train()
        norm.weight.data.uniform_(0.5, 1.5)
        given = x.contiguous(memory_format=layout).detach().requires_grad_()
        y = norm(given)
        (y * grad.contiguous(memory_format=layout)).sum().backward()
        assert y.is_contiguous(memory_format=layout) and given.grad.is_contiguous(memory_format=layout)
        found[layout] = [y, given.grad, norm.weight.grad, norm.bias.grad, norm.running_mean, norm.running_var]
    for first, last in zip(found[torch.contiguous_format], found[torch.channels_last]):
        assert torch.equal(first, last)


@pytest.mark.parametrize("name,kwargs", VARIANTS)
def test_the_inference_copy_predicts_as_the_model_and_leaves_it_as_it_was(name, kwargs):
    from steer.models.layout import for_inference

    model = create_model(name, targets=TARGETS, frame_shape=SHAPE, **kwargs)
    model(_frames(4, 3))  # batch statistics away from the initial 0 and 1, so folding them is tested
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fast = for_inference(model)
    assert model.training and not fast.training
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())  # folded into the convolutions
    model.eval()
    with torch.no_grad():
        state_a = state_b = None
        for seed in range(3):  # one frame at a time, the state carried, as Pilot steps
            frames = _frames(1, 1, seed)
            a, state_a = model(frames, state_a)
            b, state_b = fast(frames, state_b)
            assert torch.allclose(a, b, atol=1e-5)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
