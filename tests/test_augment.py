"""--augment: what a transform does to frames and targets, that a window (and a lane's run through a drive)
sees one transform, that validation, evaluation and Pilot never see one, and that draws repeat and resume."""
import json

import numpy as np
import pytest
import torch

from steer.models import load_model
from steer.train.augment import STRENGTHS, Augmenter, generator, transform
from steer.train.config import TrainConfig
from steer.train.loop import train

TARGETS = ["steering", "speed", "throttle"]
EVERY_PART = {**STRENGTHS, "rotate": 3.0}  # the defaults and the roll, which is off by default


def _only(**parts: float) -> dict[str, float]:
    return {**dict.fromkeys(STRENGTHS, 0.0), "shift_steering": 1.0, **parts}


def _frames(b: int, t: int, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (b, t, 3, 12, 16), dtype=np.uint8))


def _augmenter(strengths: dict, seed: int = 0) -> Augmenter:
    return Augmenter(strengths, TARGETS, generator(seed, 0, 0, "cpu"))


def _all(b: int) -> torch.Tensor:
    return torch.ones(b, dtype=torch.bool)


def test_a_flip_mirrors_the_frames_and_negates_steering_exactly_leaving_speed_and_throttle():
    frames, targets = _frames(3, 4), torch.randn(3, 4, 3)
    seen, moved = _augmenter(_only(flip=1.0))(frames, targets, _all(3))
    assert torch.equal(seen, frames.flip(-1))
    assert torch.equal(moved[..., 0], -targets[..., 0]) and torch.equal(moved[..., 1:], targets[..., 1:])


def test_a_shift_moves_the_view_and_corrects_steering_by_the_documented_rule():
    frames, targets = _frames(4, 2), torch.zeros(4, 2, 3)
    augment = _augmenter(_only(shift=0.25, shift_steering=2.0))
    seen, moved = augment(frames, targets, _all(4))
    shift = augment.held["shift"]
    for row, fraction in enumerate(shift.tolist()):
        pixels = round(fraction * 16)
        if pixels > 0:  # content moved right: the columns from the left edge onwards
            assert torch.equal(seen[row, ..., pixels:], frames[row, ..., :-pixels])
        assert torch.allclose(moved[row, :, 0], torch.tensor(-2.0 * fraction))  # positive steering is left
    assert torch.equal(moved[..., 1:], targets[..., 1:]) and shift.abs().max() > 0


def test_every_frame_of_a_window_gets_the_same_transform():
    frames = _frames(5, 6)
    augment = _augmenter(EVERY_PART)
    seen, _ = augment(frames, torch.zeros(5, 6, 3), _all(5))
    assert not torch.equal(seen, frames)
    for t in range(6):  # each frame alone, under its window's draw, comes out as it did inside the window
        assert torch.equal(transform(frames[:, t:t + 1], augment.held, EVERY_PART, augment.bank), seen[:, t:t + 1])
    still, _ = _augmenter(EVERY_PART)(frames[:, :1].repeat(1, 6, 1, 1, 1), torch.zeros(5, 6, 3), _all(5))
    assert all(torch.equal(still[:, t], still[:, 0]) for t in range(6))  # a still scene stays still: no flicker
    assert not torch.equal(still[0, 0], still[1, 0])  # each window its own draw


def test_stateful_lanes_keep_their_draw_across_windows_of_a_drive_and_change_at_a_drive_start():
    drive = _frames(2, 8)
    augment = _augmenter(EVERY_PART)
    whole, _ = _augmenter(EVERY_PART)(drive, torch.zeros(2, 8, 3), _all(2))  # a lane's 8 frames as one window
    first, _ = augment(drive[:, :4], torch.zeros(2, 4, 3), _all(2))
    flips = augment.held["flip"].clone()
    # next window: lane 0 goes on in its drive, lane 1 starts another (its state, and its draw, begin anew)
    second, _ = augment(drive[:, 4:], torch.zeros(2, 4, 3), torch.tensor([False, True]))
    assert torch.equal(torch.cat([first, second], 1)[0], whole[0])  # the carried previous frame: one transform
    assert not torch.equal(second[1], whole[1, 4:])
    assert augment.held["flip"][0] == flips[0]


def test_the_same_seed_gives_the_same_draws_and_another_seed_others():
    frames = _frames(4, 3)
    one, again, other = (_augmenter(EVERY_PART, seed)(frames, torch.zeros(4, 3, 3), _all(4))[0] for seed in (0, 0, 1))
    assert torch.equal(one, again) and not torch.equal(one, other)


def _config(cache, out, **changes) -> TrainConfig:
    values = dict(cache=str(cache.root), out=str(out), model="cnn-lstm", model_args={"hidden": 8, "features": 16},
                  window=5, batch_size=2, epochs=2, patience=5, split=[0.5, 0.25, 0.25], seed=3, precision="fp32",
                  augment=True)
    return TrainConfig(**{**values, **changes})


def test_resume_continues_the_draws_of_an_uninterrupted_augmented_run(tiny_cache, tmp_path):
    straight = train(_config(tiny_cache, tmp_path / "straight"))
    train(_config(tiny_cache, tmp_path / "resumed", epochs=1))
    resumed = train(_config(tiny_cache, tmp_path / "resumed"), resume=True)
    plain = train(_config(tiny_cache, tmp_path / "plain", augment=False))
    a, b, c = (load_model(run / "last").state_dict() for run in (straight, resumed, plain))
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
    assert not all(torch.allclose(a[k], c[k], atol=1e-5) for k in a)  # the draws did change what it learnt
    assert json.loads((straight / "run.json").read_text())["config"]["augment"] is True


def test_validation_evaluation_and_pilot_see_untouched_frames(tiny_cache, tmp_path, monkeypatch):
    import steer.train.augment as augment
    from steer.drive.pilot import Pilot
    from steer.evaluate.evaluate import evaluate_run

    calls = []
    real = augment.Augmenter.__call__
    monkeypatch.setattr(augment.Augmenter, "__call__", lambda self, *a: calls.append(1) or real(self, *a))
    run = train(_config(tiny_cache, tmp_path / "run", epochs=1, stateful=False, stride=5))
    windows = sum(len(d) // 5 for d in tiny_cache.drives if d.name in json.loads(
        (run / "run.json").read_text())["split"]["train"])
    grid_rows = 2 + sum(v > 0 for k, v in STRENGTHS.items() if k != "shift_steering")  # augment.png: none, each, all
    assert len(calls) == -(-windows // 2) + grid_rows  # once per training batch, never in validation
    monkeypatch.setattr(augment.Augmenter, "__call__", lambda *a: pytest.fail("augmented outside training"))
    evaluate_run(run)
    pilot, drive = Pilot(run / "best", cached=True), tiny_cache.drives[0]
    for frame, time_s in zip(drive.frames[:3], drive.timestamps_s):
        pilot.step(np.array(frame.transpose(1, 2, 0)), time_s)  # (H, W, 3), as a camera gives it
    assert (run / "augment.png").exists() and "What training fed the model" in (run / "report.html").read_text()


@pytest.mark.parametrize("flags, named", [
    (["--augment", "--augment-strengths", '{"blur": 2}'], "--augment-strengths"),
    (["--augment", "--augment-strengths", '{"sparkle": 1}'], "--augment-strengths"),
    (["--augment-strengths", '{"flip": 0}'], "--augment")])
def test_strengths_out_of_range_unknown_or_without_augment_are_refused(tiny_cache, tmp_path, refuse, flags, named):
    refuse(["train", "--cache", tiny_cache.root, "--out", tmp_path / "run", *flags], tmp_path, named)


def test_a_flip_of_a_target_whose_sign_steer_cannot_know_is_refused():
    with pytest.raises(ValueError, match='"flip": 0, "shift": 0'):
        TrainConfig(targets=["steering", "lateral_m"], augment=True).check()
    TrainConfig(targets=["steering", "lateral_m"], augment=True, augment_strengths={"flip": 0, "shift": 0}).check()


def test_a_compare_spec_augments_per_model(tiny_cache, tmp_path):
    from steer.compare import model_configs

    spec = {"common": {"cache": str(tiny_cache.root), "augment_strengths": {}},
            "models": {"plain": {"model": "pilotnet"},
                       "augmented": {"model": "pilotnet", "augment": True, "augment_strengths": {"flip": 0}}}}
    configs = model_configs(spec, tmp_path)
    assert not configs["plain"].augment
    assert configs["augmented"].augment and configs["augmented"].augment_strengths == {"flip": 0}
