"""Models that drive: clean labels, DART noise, DAgger rounds, and checkpoints chosen by driving."""
import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch

from steer.data.cache import FrameCache
from steer.drive import closed_loop as cl
from steer.drive import dagger as dg
from steer.errors import SteerError
from steer.models import load_model
from steer.train.config import TrainConfig
from steer.train.loop import train
from steer.world import car as carmodel
from steer.world.driver import DriverParams, pure_pursuit
from steer.world.simulate import WorldConfig, generate_drives, simulate_drive, start_world

CLEAN = dict(drop_rate=0.0, burst_rate=0.0)


def _meant_at(world: WorldConfig, seed: int, x, y, yaw, speed) -> np.ndarray:
    """The world driver's pure pursuit, no delay and no noise, at each of the given car states."""
    road, p, index, meant = start_world(world, seed).road, world.driver, 0, []
    for state in map(carmodel.CarState, x, y, yaw, speed):
        index, _ = road.project(state.x_m, state.y_m, index)
        lookahead = p.lookahead_min_m + p.lookahead_s * state.speed_mps
        meant.append(pure_pursuit(state, road, index, lookahead, p.lane_offset_m, world.car))
    return np.array(meant)


def _states(world: WorldConfig, seed: int, run: cl.RoadRun):
    """The car's state at each frame of a road run, from its recorded path (heading is relative to the lane)."""
    road, index, yaw = start_world(world, seed).road, 0, []
    for x, y, heading in zip(run.x_m, run.y_m, run.heading_rad):
        index, _ = road.project(x, y, index)
        yaw.append(heading + road.heading_rad[index])
    return run.x_m, run.y_m, np.array(yaw), run.speed_mps


def test_the_meant_command_is_pure_pursuit_without_noise_at_the_state_seen():
    world = WorldConfig(frames_per_drive=120, **CLEAN)
    drive = simulate_drive(world, 5)
    run = cl.drive_road(world, 5, cl.WorldDriverHands())  # the same path, its states logged
    assert np.array_equal(run.meant_rad, drive.signals["steering_meant"].values)
    assert np.allclose(drive.signals["steering_meant"].values, _meant_at(world, 5, *_states(world, 5, run)),
                       atol=1e-9)
    executed = drive.signals["steering"].values
    assert np.std(executed - drive.signals["steering_meant"].values) > 0.01  # the wheel in force is not it


def test_without_delay_or_noise_the_executed_wheel_is_the_meant_one():
    driver = replace(DriverParams(), steering_noise_rad=0.0, reaction_s=0.0, steering_rate_rad_per_s=1e6)
    drive = simulate_drive(WorldConfig(frames_per_drive=80, driver=driver, **CLEAN), 3)
    assert np.allclose(drive.signals["steering"].values, drive.signals["steering_meant"].values, atol=1e-12)


def test_dart_noise_moves_the_executed_wheel_and_leaves_the_labels_clean():
    quiet = WorldConfig(frames_per_drive=200, **CLEAN)
    noisy = replace(quiet, driver=replace(quiet.driver, dart_rad=0.3))
    a, b = simulate_drive(quiet, 9), simulate_drive(noisy, 9)
    gap = lambda d: np.std(d.signals["steering"].values - d.signals["steering_meant"].values)  # noqa: E731
    assert gap(b) > 2 * gap(a)
    run = cl.drive_road(noisy, 9, cl.WorldDriverHands())  # the same driver, its states logged
    assert np.allclose(run.meant_rad, _meant_at(noisy, 9, *_states(noisy, 9, run)), atol=1e-9)
    assert cl.world_for_loop(noisy, 10).driver.dart_rad == 0.0  # a closed loop's world driver drives without it


class Hold:
    def __init__(self, wheel_rad: float):
        self.wheel_rad = wheel_rad

    def look(self, frame, time_s):
        return cl.Command(self.wheel_rad)


def test_a_dagger_road_is_labelled_with_the_experts_meant_command_at_the_states_the_mixed_driving_reached():
    world = WorldConfig(frames_per_drive=300, **CLEAN)
    run = cl.drive_road(world, 11, Hold(0.3), keep_frames=True, expert_share=0.25)
    assert run.takeovers, "a wheel held left must leave the lane"
    meant = _meant_at(world, 11, *_states(world, 11, run))
    assert np.allclose(run.meant_rad, meant, atol=1e-9)
    assert np.allclose(run.commanded_rad, 0.25 * meant + 0.75 * 0.3, atol=1e-9)  # beta x expert + (1 - beta) x model
    drives = dg.road_drives(run, "dagger-r1-11", {"source": "dagger"})
    cuts = [0, *run.takeovers, len(run.x_m)]
    kept = [(a, b) for a, b in zip(cuts, cuts[1:]) if b - a >= 8]
    assert [d.meta["frames"] for d in drives] == [list(k) for k in kept]  # cut at every take-over
    for drive, (a, b) in zip(drives, kept):
        assert np.array_equal(drive.signals["steering_meant"].values, run.meant_rad[a:b])
        assert np.array_equal(drive.frames, run.frames[a:b])
        assert np.array_equal(drive.signals["steering"].values, run.wheel_rad[a:b])


def test_dagger_never_drives_a_held_out_or_validation_road():
    config = dg.DaggerConfig(rounds=6, roads=50)
    driven = {s for r in range(1, 7) for s in dg.dagger_seeds(config, r)}
    assert len(driven) == 300  # each round its own roads
    assert not driven & set(cl.road_seeds(cl.HELD_OUT_SEED, 10_000) + cl.road_seeds(cl.VALIDATION_SEED, 10_000))
    for seed in (cl.HELD_OUT_SEED, cl.VALIDATION_SEED):
        with pytest.raises(SteerError, match="--seed"):
            replace(config, seed=seed).check()


def _world_cache(root) -> FrameCache:
    return FrameCache.create(root, generate_drives(WorldConfig(frames_per_drive=40), 6, seed=7))


@pytest.fixture(scope="module")
def world_cache(tmp_path_factory):
    return _world_cache(tmp_path_factory.mktemp("cache"))


def _config(cache, out, **changes) -> TrainConfig:
    base = TrainConfig(cache=str(cache.root), out=str(out), model="pilotnet", stateful=False, window=1, stride=1,
                       batch_size=16, epochs=3, patience=3, precision="fp32", threads=1, split=[0.5, 0.25, 0.25])
    return replace(base, **changes)


def test_select_autonomy_keeps_the_most_autonomous_epoch_ties_by_steering_rmse(tmp_path, world_cache):
    seen, autonomy = [], iter([40.0, 90.0, 90.0])

    def judge(model):
        seen.append({k: v.clone() for k, v in model.state_dict().items()})
        return {"autonomy_pct": next(autonomy), "takeovers": 0}

    run = train(_config(world_cache, tmp_path / "run", select="autonomy"), judge=judge)
    history = json.loads((run / "history.json").read_text())
    best = 1 if history[1]["val_rmse_steering"] <= history[2]["val_rmse_steering"] else 2
    kept = load_model(run / "best").state_dict()
    assert all(torch.equal(kept[k], seen[best][k]) for k in kept)
    assert [h["val_autonomy_pct"] for h in history] == [40.0, 90.0, 90.0]


def test_select_autonomy_needs_the_closed_loop(tmp_path, world_cache):
    with pytest.raises(ValueError, match="--select autonomy"):
        train(_config(world_cache, tmp_path / "run", select="autonomy"))
    assert not (tmp_path / "run").exists()


def test_select_weights_choose_by_the_weighted_targets(tmp_path, world_cache):
    run = train(_config(world_cache, tmp_path / "run", select_weights={"steering": 1.0}, epochs=4, patience=4))
    history = json.loads((run / "history.json").read_text())
    best = min(range(4), key=lambda e: history[e]["val_rmse_steering"])
    steering = json.loads((run / "last" / "progress.json").read_text())["best_score"][0]
    std = load_model(run / "best").target_std[0].item()
    assert steering == pytest.approx((history[best]["val_rmse_steering"] / std) ** 2, rel=1e-6)


def test_a_dagger_round_adds_labelled_drives_to_training_only_and_fine_tunes(tmp_path, world_cache, capsys):
    cache = _world_cache(tmp_path / "cache")  # its own: DAgger adds drives to the run's cache
    first = train(_config(cache, tmp_path / "run", epochs=1, patience=1))
    config = dg.DaggerConfig(rounds=1, roads=2, seconds=3.0, epochs=1, lr=2e-4, val_roads=1, val_seconds=1.0,
                             processes=1)
    dg.dagger(first, tmp_path / "dagger", config)
    manifest = FrameCache(cache.root).manifest["drives"]
    added = [e for e in manifest if e["meta"].get("source") == "dagger"]
    assert added and {e["meta"]["round"] for e in added} == {1} and added[0]["meta"]["beta"] == 0.5
    assert {e["meta"]["seed"] for e in added} <= set(dg.dagger_seeds(config, 1))
    info = json.loads((tmp_path / "dagger" / "round-1" / "run.json").read_text())
    original = json.loads((first / "run.json").read_text())["split"]
    assert info["split"]["val"] == original["val"] and info["split"]["test"] == original["test"]
    assert set(info["split"]["train"]) == set(original["train"]) | {e["name"] for e in added}
    assert info["config"]["init"] == str(first / "best") and info["config"]["lr"] == 2e-4
    record = json.loads((tmp_path / "dagger" / "dagger.json").read_text())
    assert [r["round"] for r in record["rounds"]] == [0, 1] and record["rounds"][1]["driven"]["frames"] == 120
    scores = [r["validation"]["autonomy_pct"] for r in record["rounds"]]
    assert record["best_round"] == (1 if scores[1] >= scores[0] else 0)
    assert "round 1: validation autonomy" in (printed := capsys.readouterr().out) and "kept round" in printed


def test_the_kept_round_is_the_best_on_validation_and_the_later_on_a_tie():
    def kept(*scores):  # the world's rounds ranked by their validation autonomy
        return dg.best_round([{"validation": {"autonomy_pct": s}} for s in scores],
                             lambda validation: dg.WorldRoads.merit(None, validation))

    assert kept(80.0, 95.0, 90.0) == 1
    assert kept(100.0, 85.0) == 0  # the run as it was: the round drove worse
    assert kept(90.0, 90.0) == 1



@pytest.mark.parametrize("shift_m", [0.5, 1.5])
def test_a_recovery_run_starts_displaced_and_its_labels_bring_the_car_back_in_time(shift_m, monkeypatch):
    from steer.world import simulate as sim
    from steer.world.recovery import RecoveryParams

    states, step = [], sim.carmodel.step
    monkeypatch.setattr(sim.carmodel, "step", lambda *a: states.append(step(*a)) or states[-1])
    runs = RecoveryParams(run_rate=1.0, shift_m=(shift_m, shift_m), turn_deg=3.0, run_s=(2.0, 2.0))
    world = WorldConfig(frames_per_drive=40, recovery=runs, **CLEAN)  # one run of 2 s from the first frame
    sides = set()
    for seed in range(4):
        states.clear()
        drive = sim.simulate_drive(world, seed)
        road, index, lateral = start_world(world, seed).road, 0, []
        for state in states[sim.SUBSTEPS - 1::sim.SUBSTEPS]:  # the car at the end of each frame
            index, offset = road.project(state.x_m, state.y_m, index)
            lateral.append(offset - world.driver.lane_offset_m)
        shift = drive.signals["recovery_m"].values
        assert np.all(shift == shift[0]) and abs(shift[0]) == shift_m  # every frame of the drive is the run's
        assert abs(lateral[0]) > 0.8 * shift_m and np.sign(lateral[0]) == np.sign(shift[0])  # it starts displaced
        assert abs(lateral[-1]) < 0.15  # and its labels, executed, bring it back within the run
        sides.add(np.sign(shift[0]))
    assert sides == {-1.0, 1.0}


def test_training_learns_the_meant_steering_unless_told_otherwise(tmp_path, world_cache):
    from steer.evaluate.evaluate import evaluate_run

    meant = train(_config(world_cache, tmp_path / "meant", epochs=1, patience=1))
    executed = train(_config(world_cache, tmp_path / "executed", epochs=1, patience=1, meant=["none"]))
    split = json.loads((meant / "run.json").read_text())["split"]["train"]
    drives = world_cache.by_name(split)
    for run, signal in ((meant, "steering_meant"), (executed, "steering")):
        expected = np.concatenate([d.signals[signal] for d in drives]).mean()
        assert load_model(run / "best").target_mean[0].item() == pytest.approx(expected, rel=1e-5)
    metrics = evaluate_run(meant, report=False)
    assert metrics["meant"] == ["steering"]  # scored against what it learnt, the baselines on the same labels


def test_init_fine_tunes_the_checkpoint_and_refuses_another_model(tmp_path, world_cache):
    first = train(_config(world_cache, tmp_path / "first", epochs=1, patience=1))
    tuned = train(_config(world_cache, tmp_path / "tuned", epochs=1, patience=1, init=str(first / "best")))
    assert torch.equal(load_model(tuned / "best").target_std, load_model(first / "best").target_std)
    with pytest.raises(ValueError, match="--init"):
        train(_config(world_cache, tmp_path / "other", model="cnn-lstm", stateful=True, window=4,
                      init=str(first / "best")))
    assert not (tmp_path / "other").exists()


def test_world_cli_records_dart_and_recovery_runs(tmp_path):
    from steer.cli import main

    main(["world", "--out", str(tmp_path / "c"), "--drives", "1", "--frames", "60", "--processes", "1",
          "--dart-rad", "0.2", "--recovery-run-rate", "0.05"])
    entry = FrameCache(tmp_path / "c").manifest["drives"][0]
    assert entry["meta"]["config"]["driver"]["dart_rad"] == 0.2
    assert entry["meta"]["config"]["recovery"]["run_rate"] == 0.05 and "recovery_m" in entry["units"]


def test_dagger_flags_left_out_take_the_configs_defaults_and_parsing_needs_no_torch():
    from steer.cli import build_parser
    from steer.cli.dagger import ENV, WORLD, _given
    from steer.envs.dagger import EnvDaggerConfig

    parse = build_parser().parse_args
    bare = parse(["dagger", "--run", "r", "--out", "o"])
    assert dg.DaggerConfig(**_given(bare, WORLD)) == dg.DaggerConfig()
    assert EnvDaggerConfig(**_given(bare, ENV)) == EnvDaggerConfig()
    given = parse(["dagger", "--run", "r", "--out", "o", "--rounds", "2", "--lr", "0", "--val-seed", "4000"])
    assert dg.DaggerConfig(**_given(given, WORLD)) == dg.DaggerConfig(rounds=2, lr=0.0)
    assert EnvDaggerConfig(**_given(given, ENV)) == EnvDaggerConfig(rounds=2, lr=0.0, val_seed=4000)
    # every verb's flags parsed in a fresh process: steer verify, inspect or world never wait for torch's import
    code = ("import sys; from steer.cli import build_parser; build_parser(); "
            "print(sorted({'torch', 'numba'} & set(sys.modules)))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"
