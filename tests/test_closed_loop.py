import json
import tempfile
from dataclasses import replace

import numpy as np
import pytest
import torch

from steer.drive import closed_loop as cl
from steer.drive.judge import judge_on
from steer.drive.pilot import Pilot
from steer.models import create_model, load_model
from steer.models.layout import to_channels_last
from steer.train.checkpoint import save_checkpoint
from steer.world import car as carmodel
from steer.world.recovery import RecoveryParams, recovery_wheel, shifted
from steer.world.road import generate_road
from steer.world.simulate import WorldConfig, simulate_drive, start_world

CLEAN = dict(drop_rate=0.0, burst_rate=0.0)


class Hold:
    """Hands that hold one wheel angle and count the frames they were shown."""

    def __init__(self, wheel_rad: float):
        self.wheel_rad, self.times = wheel_rad, []

    def look(self, frame, time_s):
        self.times.append(time_s)
        return cl.Command(self.wheel_rad)


def _checkpoint(folder):
    torch.manual_seed(0)
    model = create_model("cnn-lstm", targets=["steering", "speed"])
    model.set_target_stats(torch.tensor([0.0, 12.0]), torch.tensor([0.2, 4.0]))
    save_checkpoint(folder, model)
    return folder


def test_the_world_driver_in_the_loop_drives_its_recorded_drive_frame_for_frame():
    world = WorldConfig(frames_per_drive=120, **CLEAN)
    recorded = simulate_drive(world, 5)
    run = cl.drive_road(world, 5, cl.WorldDriverHands(), keep_frames=True)
    assert run.takeovers == []
    assert np.array_equal(run.frames, recorded.frames)  # the same pose at every frame: the same path
    assert np.array_equal(run.wheel_rad, recorded.signals["steering"].values)
    assert np.array_equal(run.speed_mps, recorded.signals["speed"].values)
    assert 0.01 < np.abs(run.lateral_m).max() < 1.0  # it wanders in its lane, as it drove


def test_blind_reference_hands_drive_the_same_without_a_frame_rendered(monkeypatch):
    world = WorldConfig(frames_per_drive=150)  # glitches on: their noise draws must not move the car
    seeing = {name: cl.drive_road(world, 7, type("Seeing", (kind,), {"blind": False})())
              for name, kind in cl.REFERENCES.items()}
    monkeypatch.setattr("steer.world.camera.Renderer.render", lambda *a: pytest.fail("rendered for blind hands"))
    for name, kind in cl.REFERENCES.items():
        blind = cl.drive_road(world, 7, kind())
        assert np.array_equal(blind.wheel_rad, seeing[name].wheel_rad) and blind.takeovers == seeing[name].takeovers
        assert np.array_equal(blind.x_m, seeing[name].x_m)


def test_a_straight_wheel_is_taken_over_on_every_road_with_a_bend():
    world = WorldConfig(frames_per_drive=300, **CLEAN)
    bends = 0
    for seed in cl.road_seeds(1000, 4):
        run = cl.drive_road(world, seed, cl.ZeroHands())
        road = start_world(world, seed).road
        driven = road.s_m <= 20 + np.sum(run.speed_mps) * run.dt_s
        if np.abs(road.curvature_1pm[driven]).max() > 1 / 400:
            bends += 1
            assert run.takeovers, f"road {seed} has a bend, yet the straight wheel was never taken over"
    assert bends >= 2  # the test saw bends


def test_a_takeover_puts_the_car_on_the_lane_centre_keeps_the_hands_and_charges_six_seconds():
    world = WorldConfig(frames_per_drive=300, **CLEAN)
    hands = Hold(2.0)  # hard left: off the lane within a second or two
    run = cl.drive_road(world, 1000, hands)
    assert run.takeovers
    road = start_world(world, 1000).road
    for i in run.takeovers:
        nearest = int(np.argmin((road.x_m - run.x_m[i]) ** 2 + (road.y_m - run.y_m[i]) ** 2))
        _, offset = road.project(run.x_m[i], run.y_m[i], nearest)
        assert offset == pytest.approx(world.driver.lane_offset_m, abs=0.02)  # on the lane centre
        assert run.lateral_m[i] == 0 and run.heading_rad[i] == 0
        assert abs(run.lateral_m[i - 1]) > 0.5  # it had strayed
    assert len(hands.times) == world.frames_per_drive  # shown every frame, never replaced or reset
    elapsed = world.frames_per_drive / world.fps
    s = cl.scores([run], penalty_s=6.0)
    assert s["takeovers"] == len(run.takeovers)
    assert s["autonomy_pct"] == pytest.approx(max(0, 1 - len(run.takeovers) * 6.0 / elapsed) * 100)


def test_autonomy_is_nvidias_formula():
    world = WorldConfig(frames_per_drive=2400, **CLEAN)  # 120 s
    run = cl.RoadRun(0, 1 / world.fps, *(np.zeros(2400) for _ in range(7)), takeovers=[100, 900],
                     **{k: np.zeros(2400) for k in ("meant_rad", "meant_mps", "throttle", "brake", "glitch")})
    assert cl.scores([run], 6.0)["autonomy_pct"] == pytest.approx(90.0)


@pytest.fixture
def one_thread():
    """A step a frame at a time: two threads on a busy machine measured 8-13x slower than one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_two_runs_with_the_same_seed_give_identical_results(tmp_path, one_thread):
    ckpt = _checkpoint(tmp_path / "ckpt")
    world = WorldConfig(frames_per_drive=20, drop_rate=0.2)  # the glitches too come from the seed
    a, b = (cl.closed_loop([str(ckpt)], world, [3], cl.LoopConfig()) for _ in range(2))
    assert a == b
    c = cl.closed_loop([str(ckpt)], world, [4], cl.LoopConfig())
    assert c["drivers"][str(ckpt)] != a["drivers"][str(ckpt)]


def test_roads_driven_in_several_processes_score_as_in_one(tmp_path, one_thread):
    """One road per process (spawned, the model loaded afresh in each) against one process driving the roads
    in turn with the same hands: the recurrent state must not leak from one road into the next."""
    ckpt = str(_checkpoint(tmp_path / "ckpt"))
    world, loop = WorldConfig(frames_per_drive=60, drop_rate=0.1), cl.LoopConfig(max_offset_m=0.1)
    seeds = cl.road_seeds(1000, 3)
    apart = cl.closed_loop([ckpt, *cl.REFERENCES], world, seeds, loop, processes=2)
    hands = cl.ModelHands(Pilot(ckpt))
    in_turn = [cl.drive_road(world, seed, hands, loop) for seed in seeds]
    assert apart["drivers"][ckpt]["overall"] == cl.scores(in_turn, loop.penalty_s)
    assert apart["drivers"][ckpt]["overall"]["takeovers"] > 0  # the roads asked something of the model
    assert apart == cl.closed_loop([ckpt, *cl.REFERENCES], world, seeds, loop, processes=1)


def test_the_epoch_judge_scores_a_model_in_training_on_several_processes_as_in_one(tmp_path, one_thread,
                                                                                     monkeypatch):
    """--select autonomy's judge hands the model being trained (channels-last, in train mode) to its drivers as
    a checkpoint of its own: the scores of the model itself driving the roads in turn, and nothing left behind."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the judge writes its checkpoint
    model = load_model(_checkpoint(tmp_path / "ckpt")).train()
    to_channels_last(model)
    world, seeds = WorldConfig(frames_per_drive=60, drop_rate=0.1), cl.road_seeds(cl.VALIDATION_SEED, 3)
    found = judge_on(world, seeds, processes=2)(model)
    assert model.training and sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]
    hands = cl.ModelHands(Pilot(model))
    assert found == cl.scores([cl.drive_road(world, seed, hands) for seed in seeds], cl.LoopConfig().penalty_s)


@pytest.mark.parametrize("shift_m", [-1.5, -0.5, 0.5, 1.5])
def test_a_recovery_label_brings_the_car_back_to_its_lane_in_the_set_time(shift_m):
    world, back_s, speed = WorldConfig(), 1.0, 10.0
    road = generate_road(np.random.default_rng(0), 300)  # every road starts with 60 m of straight
    index = road.index_at(20.0)
    on_lane = carmodel.CarState(road.x_m[index], road.y_m[index] + world.driver.lane_offset_m, 0.0, speed)
    car = shifted(on_lane, road, index, shift_m, 0.0)
    wheel = recovery_wheel(car, road, index, back_s, world.driver.lane_offset_m, world.car)
    ahead = speed * back_s
    expected = np.arctan(2 * -shift_m / (ahead**2 + shift_m**2) * world.car.wheelbase_m) * world.car.steering_ratio
    assert np.sign(wheel) == -np.sign(shift_m)  # back toward the lane
    assert wheel == pytest.approx(expected, rel=0.02)
    throttle, brake = carmodel.pedals_for(world.car, speed, 0.0)
    for _ in range(int(back_s / 0.01)):
        car = carmodel.step(car, world.car, wheel, throttle, brake, 0.01)
    assert car.y_m - world.driver.lane_offset_m == pytest.approx(0.0, abs=0.05)  # on the lane centre


def test_recovery_views_change_only_their_frames_and_labels():
    plain = WorldConfig(frames_per_drive=60, **CLEAN)
    views = replace(plain, recovery=RecoveryParams(rate=0.3, turn_deg=0.0))
    a, b = simulate_drive(plain, 2), simulate_drive(views, 2)
    shift = b.signals["recovery_m"].values
    marked = shift != 0
    assert 5 < marked.sum() < 40 and np.all((np.abs(shift[marked]) >= 0.5) & (np.abs(shift[marked]) <= 1.5))
    assert np.array_equal(a.frames[~marked], b.frames[~marked])
    assert not np.any(np.all(a.frames[marked] == b.frames[marked], axis=(1, 2, 3)))
    steering_a, steering_b = a.signals["steering"].values, b.signals["steering"].values
    assert np.array_equal(steering_a[~marked], steering_b[~marked])
    # on the straight start, a view shifted to one side is labelled to steer to the other, more than the driver
    straight = marked & (np.arange(60) < 40)
    assert straight.any()
    assert np.all(np.sign(steering_b[straight] - steering_a[straight]) == -np.sign(shift[straight]))
    assert np.array_equal(a.signals["speed"].values, b.signals["speed"].values)


def _run_folder(tmp_path, cache):
    run = tmp_path / "run"
    _checkpoint(run / "best")
    (run / "run.json").write_text(json.dumps({"config": {"cache": str(cache.root)}}))
    return run


def test_drive_refuses_roads_the_run_trained_on(tmp_path, tiny_cache, refuse):
    run = _run_folder(tmp_path, tiny_cache)
    line = refuse(["drive", "--checkpoint", run / "best", "--roads", "2", "--seconds", "1", "--seed", "7",
                   "--out", tmp_path / "out"], tmp_path, "700021", "world-7-000", "--seed")
    assert "trained" in line


def test_drive_writes_scores_beside_the_reference_drivers(tmp_path, tiny_cache, capsys, one_thread):
    from steer.cli import main

    run = _run_folder(tmp_path, tiny_cache)
    main(["drive", "--checkpoint", str(run / "best"), "--roads", "2", "--seconds", "0.5", "--out", str(tmp_path)])
    result = json.loads((tmp_path / "closed_loop.json").read_text())
    assert set(result["drivers"]) == {str(run / "best"), "world driver (ceiling)", "zero steering (floor)"}
    assert result["roads"] == cl.road_seeds(1000, 2)
    assert len(result["drivers"]["zero steering (floor)"]["per_road"]) == 2
    assert result["world"]["frames_per_drive"] == 10
    assert "autonomy %" in capsys.readouterr().out


class Clock:
    """Hands that ask for a wheel angle equal to the time they saw, and note whether each frame was black."""

    def __init__(self):
        self.black = []

    def look(self, frame, time_s):
        self.black.append(not frame.any())
        return cl.Command(time_s)


def test_robustness_conditions_drop_frames_delay_the_command_and_halve_the_frame_rate():
    world = WorldConfig(frames_per_drive=200, **CLEAN)
    hands = Clock()
    cl.drive_road(replace(world, drop_rate=0.2), 1000, hands, cl.LoopConfig(max_offset_m=100, max_heading_rad=9))
    assert 0.12 < np.mean(hands.black) < 0.28
    late = cl.drive_road(world, 1000, Clock(), cl.LoopConfig(latency_frames=3, max_offset_m=100, max_heading_rad=9))
    assert np.allclose(late.commanded_rad[3:], np.arange(197) * 0.05)  # frame i carries the command of frame i-3
    hands = Clock()
    half = cl.drive_road(world, 1000, hands, cl.LoopConfig(frame_stride=2, max_offset_m=100, max_heading_rad=9))
    assert len(hands.black) == 100 and np.allclose(half.commanded_rad[1::2], half.commanded_rad[::2])
    assert set(cl.ROBUSTNESS) >= {"dropped frames 5%", "dropped frames 20%", "command 1 frame late",
                                  "command 3 frames late", "half frame rate"}


def test_closed_loop_video_shows_every_frame_and_a_still(tmp_path):
    import cv2

    from steer.evaluate.video import write_closed_loop

    run = cl.drive_road(WorldConfig(frames_per_drive=60, **CLEAN), 1000, Hold(3.0), keep_frames=True)
    assert run.takeovers
    write_closed_loop(tmp_path / "drive.mp4", run)
    video = cv2.VideoCapture(str(tmp_path / "drive.mp4"))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 60
    still = cv2.imread(str(tmp_path / "drive.png"))
    assert still.shape[0] == 3 * 66 and still.shape[1] == 3 * 200


def test_a_webm_closed_loop_video_opens_without_opencvs_vp80_warning(tmp_path, capfd):
    import cv2

    from steer.evaluate.video import write_closed_loop

    write_closed_loop(tmp_path / "drive.webm", cl.drive_road(WorldConfig(frames_per_drive=20, **CLEAN), 1000, Hold(0.0),
                                                             keep_frames=True))
    assert int(cv2.VideoCapture(str(tmp_path / "drive.webm")).get(cv2.CAP_PROP_FRAME_COUNT)) == 20
    assert "VP80" not in capfd.readouterr().err  # OpenCV prints it on descriptor 2, past Python's sys.stderr


def test_with_speed_model_the_car_follows_the_speed_the_hands_ask_for():
    class Slow:
        def look(self, frame, time_s):
            return cl.Command(None, speed_mps=6.0)  # the driver's wheel, the hands' speed

    world = WorldConfig(frames_per_drive=300, **CLEAN)
    driven = cl.drive_road(world, 1000, Slow(), cl.LoopConfig(speed="model"))
    assert abs(start_world(world, 1000).state.speed_mps - 6.0) > 3  # the driver cruises elsewhere
    assert driven.speed_mps[-1] == pytest.approx(6.0, abs=0.5)
