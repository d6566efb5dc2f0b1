"""What is particular to the komanda model: its clip of past frames, its fed-back predictions; the
contract, streaming and export tests run it as every other registered model (conftest.MODEL_VARIANTS)."""
import json

import numpy as np
import pytest
import torch

from steer.models import create_model, load_model
from steer.train.config import TrainConfig
from steer.train.loop import train

TARGETS = ["steering", "speed", "throttle"]
SHAPE = (3, 66, 200)
SMALL = {"hidden": 8, "features": 16}


def _frames(b, t, seed=0):
    return torch.randint(0, 256, (b, t, *SHAPE), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def _model(**kwargs):
    torch.manual_seed(0)
    return create_model("komanda", targets=TARGETS, frame_shape=SHAPE, **{**SMALL, **kwargs})


def _feedback_outputs(model, frames, teacher):
    torch.manual_seed(1)  # the same draws for both teachers
    with torch.no_grad():
        return model(frames, None, teacher)[0]


def test_with_teacher_ratio_1_the_previous_true_target_is_fed_back():
    model = _model(feedback=True, teacher_ratio=1.0).train()
    frames, teacher = _frames(2, 4), torch.randn(2, 4, 3)
    changed = teacher.clone()
    changed[:, 1] += 1.0
    a, b = _feedback_outputs(model, frames, teacher), _feedback_outputs(model, frames, changed)
    assert torch.equal(a[:, :2], b[:, :2])  # steps 0 and 1 come before the changed value is fed back
    assert not torch.allclose(a[:, 2], b[:, 2], atol=1e-4)


def test_with_teacher_ratio_0_or_in_eval_mode_the_teacher_is_ignored():
    frames, teacher = _frames(2, 4), torch.randn(2, 4, 3)
    for model in (_model(feedback=True, teacher_ratio=0.0).train(), _model(feedback=True, teacher_ratio=1.0).eval()):
        a, b = _feedback_outputs(model, frames, teacher), _feedback_outputs(model, frames, teacher + 1.0)
        assert torch.equal(a, b)
        assert torch.equal(a, _feedback_outputs(model, frames, None))


def test_its_own_previous_prediction_is_fed_back_and_carried_in_the_state():
    model = _model(feedback=True).eval()
    frames = _frames(1, 3)
    with torch.no_grad():
        preds, state = model(frames, None)
        assert torch.allclose(state[-1][0], preds[:, -1])
        again, _ = model(frames[:, 2:], state)
        state = (*state[:-1], state[-1] + 1.0)
        other, _ = model(frames[:, 2:], state)
    assert not torch.allclose(again, other, atol=1e-4)


def _without_memory(state):
    """The state with the recurrent core's part (h, c) zeroed: what is left is the clip."""
    return (torch.zeros_like(state[0]), torch.zeros_like(state[1]), *state[2:])


def test_past_frames_in_the_clip_matter_and_a_start_repeats_the_first_frame():
    model = _model(clip=4).eval()
    frames, other = _frames(1, 4), _frames(1, 4, seed=1)
    with torch.no_grad():
        _, state = model(frames[:, :3], None)
        _, other_state = model(other[:, :3], None)
        assert torch.equal(state[2].view(3, 1, *SHAPE), model.scale_frames(frames[0, :3])[:, None])
        seen, _ = model(frames[:, 3:], _without_memory(state))
        other_past, _ = model(frames[:, 3:], _without_memory(other_state))
        assert not torch.allclose(seen, other_past, atol=1e-4)
        # a start: the current frame stands in for the past ones
        repeated = model.scale_frames(frames[:, 3]).reshape(1, 1, -1).expand(3, 1, -1)
        fresh, _ = model(frames[:, 3:], None)
        as_if_still, _ = model(frames[:, 3:], (*_without_memory(state)[:2], repeated, torch.ones(1, 1, 1)))
    assert torch.allclose(fresh, as_if_still, atol=1e-6)


def test_a_clip_of_one_frame_carries_no_past():
    model = _model(clip=1).eval()
    _, state = model(_frames(1, 3), None)
    assert len(state) == 2  # h and c only
    assert len(_model(clip=3, feedback=True, cell="gru").initial_state(2)) == 1 + 2 + 1


@pytest.mark.parametrize("kwargs,message", [
    ({"clip": 0}, "clip must be a whole number"), ({"clip": 2.5}, "clip must be a whole number"),
    ({"clip": "4"}, "clip must be a whole number"), ({"teacher_ratio": 1.5}, "teacher_ratio is a probability"),
    ({"feedback": True, "bidirectional": True}, "cannot be bidirectional"),
])
def test_bad_options_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        create_model("komanda", targets=TARGETS, **kwargs)


def test_it_is_small_enough_to_train_on_a_cpu():
    model = create_model("komanda", targets=TARGETS, frame_shape=SHAPE, feedback=True)
    assert sum(p.numel() for p in model.parameters()) < 500_000


def test_it_trains_through_the_loop_repeatably_and_its_checkpoint_rebuilds_it(tiny_cache, tmp_path):
    def run(out):
        return train(TrainConfig(cache=str(tiny_cache.root), out=str(out), model="komanda", window=5, batch_size=2,
                                 epochs=1, split=[0.5, 0.25, 0.25], seed=3, channels_last=True,  # its Conv3d too
                                 model_args={**SMALL, "clip": 3, "feedback": True, "teacher_ratio": 0.5}))

    first, second = run(tmp_path / "a"), run(tmp_path / "b")
    history = json.loads((first / "history.json").read_text())
    assert np.isfinite(history[0]["loss"]) and np.isfinite(history[0]["val_loss"])
    a, b = load_model(first / "last"), load_model(second / "last")
    assert a.config()["clip"] == 3 and a.config()["feedback"] and a.config()["teacher_ratio"] == 0.5
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name  # the teacher's draws come from the seeded global generator
