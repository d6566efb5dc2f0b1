import numpy as np
import pytest

from steer.world import car as carmodel
from steer.world.camera import LANE_WIDTH_M, Camera
from steer.world.driver import DriverParams
from steer.world.glitches import DROPPED
from steer.world.recovery import RecoveryParams
from steer.world.road import DS_M, SHARPEST_SPAN, generate_road
from steer.world.simulate import WorldConfig, simulate_drive


def test_yaw_rate_is_speed_over_wheelbase_times_tan_of_road_wheel_angle():
    params = carmodel.CarParams()
    wheel = 2.0  # steering-wheel angle, rad
    road_wheel = wheel / params.steering_ratio
    speed = 10.0
    state = carmodel.CarState(speed_mps=speed)
    throttle, brake = carmodel.pedals_for(params, speed, 0.0)  # hold the speed
    dt, steps = 0.01, 100
    for _ in range(steps):
        state = carmodel.step(state, params, wheel, throttle, brake, dt)
    expected = speed / params.wheelbase_m * np.tan(road_wheel)
    assert state.speed_mps == pytest.approx(speed, rel=1e-6)
    assert state.yaw_rad / (dt * steps) == pytest.approx(expected, rel=1e-6)
    # and the car drives on a circle of radius L / tan(road-wheel angle)
    radius = params.wheelbase_m / np.tan(road_wheel)
    assert np.hypot(state.x_m, state.y_m - radius) == pytest.approx(radius, rel=1e-4)


def test_steering_wheel_angle_is_limited():
    params = carmodel.CarParams()
    state = carmodel.step(carmodel.CarState(speed_mps=5.0), params, 100.0, 0.0, 0.0, 0.1)
    limited = carmodel.step(carmodel.CarState(speed_mps=5.0), params, params.max_steering_wheel_rad, 0.0, 0.0, 0.1)
    assert state.yaw_rad == pytest.approx(limited.yaw_rad)


def test_pedals_reproduce_the_asked_acceleration():
    params = carmodel.CarParams()
    for accel in (-3.0, 0.0, 1.5):
        throttle, brake = carmodel.pedals_for(params, 15.0, accel)
        after = carmodel.step(carmodel.CarState(speed_mps=15.0), params, 0.0, throttle, brake, 0.01)
        assert (after.speed_mps - 15.0) / 0.01 == pytest.approx(accel, rel=1e-3)


def test_road_curvature_is_continuous_and_heading_integrates_it(rng):
    road = generate_road(rng, 2000)
    assert road.length_m >= 2000
    assert np.abs(np.diff(road.curvature_1pm)).max() < 0.02 * DS_M  # ramps, no jumps
    assert np.allclose(np.diff(road.heading_rad), road.curvature_1pm[:-1] * DS_M)


def test_world_is_deterministic_for_a_seed(tiny_world):
    a, b = simulate_drive(tiny_world, 3), simulate_drive(tiny_world, 3)
    c = simulate_drive(tiny_world, 4)
    assert np.array_equal(a.frames, b.frames)
    assert all(np.array_equal(a.signals[k].values, b.signals[k].values) for k in a.signals)
    assert not np.array_equal(a.frames, c.frames)


def test_drive_has_frames_times_and_signals_in_units():
    world = WorldConfig(frames_per_drive=60, drop_rate=0.2)
    drive = simulate_drive(world, 1)
    assert drive.frames.shape == (60, 66, 200, 3) and drive.frames.dtype == np.uint8
    assert np.allclose(np.diff(drive.timestamps_s), 1 / world.fps)
    assert {k: s.unit for k, s in drive.signals.items()} == {
        "steering": "rad", "speed": "m/s", "throttle": "1", "brake": "1", "glitch": "code", "steering_meant": "rad",
        "speed_meant": "m/s"}
    assert 0 <= drive.signals["throttle"].values.min() and drive.signals["throttle"].values.max() <= 1
    dropped = drive.signals["glitch"].values == DROPPED
    assert dropped.any() and not drive.frames[dropped].any()
    assert drive.frames[~dropped].mean() > 50  # the clean frames show a scene


def test_driver_keeps_the_car_in_its_lane(monkeypatch):
    import steer.world.simulate as simulate

    offsets = []

    class Measuring:  # stands in for the camera: records where the car is across the road at each frame
        def __init__(self, camera):
            self.shape = (camera.height_px, camera.width_px, 3)

        def render(self, road, x_m, y_m, yaw_rad, index, t_s, scenery):
            offsets.append(road.project(x_m, y_m, index)[1])
            return np.zeros(self.shape, np.uint8)

    monkeypatch.setattr(simulate, "Renderer", Measuring)
    world = WorldConfig(frames_per_drive=400, drop_rate=0, burst_rate=0)
    drive = simulate_drive(world, 5)
    lane = np.array(offsets) - world.driver.lane_offset_m  # metres left of the lane's centre
    # a car 1.8 m wide stays inside its 3.6 m lane throughout, and near the middle on average
    assert len(lane) == 400 and np.abs(lane).max() < (LANE_WIDTH_M - 1.8) / 2 and np.abs(lane).mean() < 0.3
    speed = drive.signals["speed"].values
    assert 3 < speed.min() and speed.max() < 30
    # the steering follows the bends: not constant, within the wheel's limits
    steering = drive.signals["steering"].values
    assert steering.std() > 0.02 and np.abs(steering).max() < 7.85


def test_replayed_log_keeps_the_car_in_its_lane():
    from steer.data.drive import Signal
    from steer.world.replay import path_of, replay, road_under

    world = WorldConfig()
    t = np.arange(300) / 20
    steering = Signal(1.5 * np.sin(t / 3), "rad")  # S-bends
    speed = Signal(12 + 3 * np.sin(t / 5), "m/s")
    x, y, yaw = path_of(t, steering.values, speed.values, world.car)
    road = road_under(x, y, yaw, world.driver.lane_offset_m)
    index, offsets = 0, []
    for i in range(len(t)):
        index, offset = road.project(x[i], y[i], index)
        offsets.append(offset)
    assert np.allclose(offsets, world.driver.lane_offset_m, atol=0.05)  # in the right-hand lane throughout
    drive = replay(t, {"steering": steering, "speed": speed}, world, seed=1, name="log")
    assert drive.frames.shape == (300, 66, 200, 3) and drive.frames.mean() > 50
    assert np.array_equal(drive.signals["steering"].values, steering.values)
    with pytest.raises(ValueError, match="no speed"):
        replay(t, {"steering": steering}, world, seed=1, name="log")


@pytest.mark.parametrize("camera", [Camera(), Camera(height_px=40, width_px=96, supersample=3, pitch_deg=12.0)],
                         ids=["default", "supersampled-3"])
def test_compiled_renderer_draws_the_reference_renderers_frames(monkeypatch, camera):
    import steer.world.simulate as simulate
    from steer.world.camera_reference import ReferenceRenderer

    # noise bursts, dropped frames and recovery views (the car shifted and turned) on every seed
    world = WorldConfig(frames_per_drive=20, drop_rate=0.1, burst_rate=0.05, camera=camera,
                        recovery=RecoveryParams(rate=0.3))
    seeds = range(20) if camera == Camera() else range(3)
    compiled = [simulate_drive(world, seed) for seed in seeds]
    monkeypatch.setattr(simulate, "Renderer", ReferenceRenderer)
    for seed, drive in zip(seeds, compiled):
        reference = simulate_drive(world, seed)
        assert drive.frames.shape == reference.frames.shape == (20, camera.height_px, camera.width_px, 3)
        assert np.abs(drive.frames.astype(np.int16) - reference.frames).max() <= 1, f"seed {seed}"
        assert all(np.array_equal(drive.signals[k].values, reference.signals[k].values) for k in drive.signals)
    clean = np.concatenate([d.frames[d.signals["glitch"].values == 0] for d in compiled])
    assert clean.mean() > 50 and np.ptp(clean, axis=(1, 2, 3)).min() > 100  # real scenes, not flat


def test_sharpest_bend_of_a_stretch_is_found_as_a_pass_over_it_finds_it(rng):
    road = generate_road(rng, 700)
    n = len(road.s_m)
    assert n > 2 * SHARPEST_SPAN  # some stretches beyond the table
    stretches = [(0, n), (n - 3, n + 50), (n, n + 9), (5, 5), (7, 3)] + [tuple(rng.integers(0, n + 20, 2).tolist())
                                                                         for _ in range(2000)]
    for first, stop in stretches:
        assert road.sharpest_1pm(first, stop) == np.abs(road.curvature_1pm[first:stop]).max(initial=0.0)


def test_a_frame_is_the_same_from_a_float_pose_as_from_numpys_scalars(rng):
    from steer.world.camera import Renderer, Scenery

    renderer, scenery = Renderer(Camera()), Scenery.random(rng)
    for yaw in rng.uniform(-3, 3, 20):  # the hills' ridge in float64 either way (float32 columns beside a float)
        assert np.array_equal(renderer._ridge(float(yaw), scenery), renderer._ridge(np.float64(yaw), scenery))


def test_scalar_math_drives_as_numpy_did(monkeypatch):
    """clamp for np.clip, math's sin, cos and sqrt for numpy's on one number (each about 1 µs a call), the
    sharpest bend ahead from a table, noise bursts clipped in place and a car state of floats, not numpy's
    scalars, give the very drives numpy gave (numpy's tan, arctan, arctan2 and hypot differ from libm's in
    the last bit on some CPUs, so they stay)."""
    from types import SimpleNamespace

    import steer.world.driver as drivermodel
    import steer.world.glitches as glitchmodel
    import steer.world.recovery as recoverymodel
    import steer.world.road as roadmodel

    # a slow wheel and DART noise, so the rate limit binds often; recovery runs move the car off its lane
    world = WorldConfig(frames_per_drive=150, camera=Camera(height_px=6, width_px=8, supersample=1),
                        driver=DriverParams(dart_rad=0.3, steering_rate_rad_per_s=2.0),
                        recovery=RecoveryParams(rate=0.1, run_rate=0.02), burst_rate=0.03)
    drives = [simulate_drive(world, seed) for seed in range(3)]
    assert any((d.signals["glitch"].values == glitchmodel.NOISE).any() for d in drives)
    bound = []

    def np_clip(value, low, high):  # what car.step, turn_wheel and the speed gain called before clamp
        bound.append(not low <= value <= high)
        return np.clip(value, low, high)

    monkeypatch.setattr(carmodel, "clamp", np_clip)
    monkeypatch.setattr(drivermodel, "clamp", np_clip)
    monkeypatch.setattr(carmodel, "yaw_rate", lambda speed, wheel, base: speed / base * np.tan(wheel))  # numpy's yaw
    monkeypatch.setattr(roadmodel.Road, "sharpest_1pm",
                        lambda road, first, stop: np.abs(road.curvature_1pm[first:stop]).max(initial=0.0))
    monkeypatch.setattr(glitchmodel, "noisy_frames",
                        lambda frames, noise: np.clip(frames + noise, 0, 255).astype(np.uint8))
    for module in (carmodel, drivermodel, roadmodel, recoverymodel):
        monkeypatch.setattr(module, "math", SimpleNamespace(sin=np.sin, cos=np.cos, sqrt=np.sqrt))
    for seed, drive in enumerate(drives):
        before = simulate_drive(world, seed)
        assert drive.signals.keys() == before.signals.keys()
        assert all(np.array_equal(drive.signals[k].values, before.signals[k].values) for k in drive.signals)
        assert np.array_equal(drive.frames, before.frames)
    assert 0.05 < np.mean(bound) < 0.95  # the limits bound, and not always
