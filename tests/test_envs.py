"""Environments through the adapter: a tiny fake env written here (an image that encodes its state, a known
expert), and CarRacing-v3 where gymnasium with box2d is installed."""
import csv
import json
import os
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from steer.cli import main
from steer.data.cache import FrameCache
from steer.drive.pilot import Pilot
from steer.envs import loop as el
from steer.envs.adapter import EnvAdapter
from steer.envs.record import Dart, record_episode
from steer.envs.spec import Axis, EnvSpec, load_spec
from steer.models import create_model
from steer.train.checkpoint import save_checkpoint

HEIGHT, DASH, WIDTH = 66, 10, 200  # the view's rows, a dashboard's below them, the width
SCALE = 8.0  # rad per action unit: a power of two, so rad and back is exact
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


class LaneEnv:
    """A car on a lane of 25 places (-12..12, positive = left of centre) seen from above: a bright column at
    its place, and below a dashboard showing the step. Steering (-1..1, positive = right) moves it
    round(3 x steer) places right a step; the one pedal (-1..1) earns 0.1 a unit; an episode lasts 20 + seed % 7."""

    def __init__(self):
        self.action_space = SimpleNamespace(low=np.array([-1.0, -1.0]), high=np.array([1.0, 1.0]))

    def reset(self, seed=None):
        self.place, self.t, self.steps = int(np.random.default_rng(seed).integers(-12, 13)), 0, 20 + seed % 7
        return self._image(), {}

    def _image(self):
        image = np.full((HEIGHT + DASH, WIDTH, 3), 60, np.uint8)
        image[:HEIGHT, 100 + 6 * self.place] = 255
        image[HEIGHT:] = self.t * 9 % 256
        return image

    def step(self, action):
        self.place = int(np.clip(self.place - round(3 * float(action[0])), -12, 12))
        self.t += 1
        return self._image(), 1 - abs(self.place) / 12 + 0.1 * float(action[1]), self.t >= self.steps, False, {}

    def close(self):
        pass


def expert(env):
    """Toward the centre; the pedal by how near it is."""
    return np.array([np.clip(env.place / 6, -1, 1), 1 - abs(env.place) / 12])


def departed(env):
    return abs(env.place) > 6


def place(env):
    return float(env.place)


def _spec_file(folder: Path, **changes) -> Path:
    spec = {"name": "lane", "env": f"{__file__}:LaneEnv", "crop": [0, DASH / (HEIGHT + DASH)], "fps": 10,
            "steering": {"index": 0, "sign": -1, "scale": SCALE}, "pedal": {"index": 1},
            "expert": f"{__file__}:expert", "departure": f"{__file__}:departed",
            "signals": {"place": [f"{__file__}:place", "1"]}, **changes}
    path = folder / "lane.json"
    path.write_text(json.dumps(spec))
    return path


@pytest.fixture
def lane(tmp_path) -> EnvAdapter:
    return EnvAdapter(load_spec(_spec_file(tmp_path)))


def _stepped(adapter: EnvAdapter, seed: int, actions=None):
    """The raw frames, the expert's actions and rewards of an episode stepped by hand (with `actions`, those)."""
    frames, taken, rewards = [adapter.reset(seed)], [], []
    for i in range(1000):
        taken.append(adapter.expert_action() if actions is None else actions[i])
        frame, reward, done = adapter.step(taken[-1])
        rewards.append(reward)
        if done:
            return np.stack(frames), np.array(taken), np.array(rewards)
        frames.append(frame)


def test_recording_gives_frames_times_and_labels_exactly_as_stepped(lane):
    drive = record_episode(lane, 5, (HEIGHT, WIDTH))
    frames, actions, rewards = _stepped(lane, 5)
    assert np.array_equal(drive.frames, frames[:, :HEIGHT])  # the dashboard cropped, nothing else changed
    assert np.array_equal(drive.timestamps_s, np.arange(len(frames)) / 10)
    assert np.array_equal(drive.signals["steering"].values, -SCALE * actions[:, 0])
    assert np.array_equal(drive.signals["steering_meant"].values, drive.signals["steering"].values)
    assert np.array_equal(drive.signals["throttle"].values - drive.signals["brake"].values, actions[:, 1])
    assert np.array_equal(drive.signals["reward"].values, rewards) and drive.meta["return"] == rewards.sum()
    places = (np.argmax(frames[:, 0, :, 0], axis=1) - 100) / 6
    assert np.array_equal(drive.signals["place"].values, places)
    assert np.array_equal(drive.signals["departed"].values, np.abs(places) > 6)
    assert drive.meta["crop"] == [0, DASH / (HEIGHT + DASH)] and drive.meta["source_shape"] == [HEIGHT + DASH, WIDTH]


def test_steering_sign_and_scale_round_trip():
    env = LaneEnv()
    one_pedal = EnvAdapter(EnvSpec("a", "x:y", Axis(0, -1.0, SCALE), 10.0, pedal=Axis(1)), env)
    assert one_pedal.action(steering_rad=2.0).tolist() == [-0.25, 0.0]  # positive = left; the env's positive is right
    for steering, throttle, brake in ((2.0, 0.5, 0.0), (-7.5, 0.0, 0.25), (0.0, 0.0, 0.0)):
        back = one_pedal.controls(one_pedal.action(steering_rad=steering, throttle=throttle, brake=brake))
        assert (back.steering_rad, back.throttle, back.brake) == (steering, throttle, brake)
    assert one_pedal.controls(one_pedal.action(steering_rad=100.0)).steering_rad == SCALE  # clipped to the space
    env.action_space = SimpleNamespace(low=np.array([0.0, -1.0, 0.0]), high=np.ones(3))
    pedals = EnvAdapter(EnvSpec("b", "x:y", Axis(1, 1.0, 0.5), 10.0, throttle=Axis(0), brake=Axis(2)), env)
    assert pedals.action(steering_rad=0.25, throttle=0.75, brake=0.5).tolist() == [0.75, 0.5, 0.5]
    back = pedals.controls([0.75, 0.5, 0.5])
    assert (back.steering_rad, back.throttle, back.brake) == (0.25, 0.75, 0.5)


def test_dart_noise_moves_the_executed_steering_and_leaves_the_label_the_experts(lane):
    drive = record_episode(lane, 3, (HEIGHT, WIDTH), Dart(std_rad=2.0, tau_s=0.5))
    executed, meant = drive.signals["steering"].values, drive.signals["steering_meant"].values
    noise = executed - meant
    assert np.abs(noise).max() > 0.5 and np.corrcoef(noise[1:], noise[:-1])[0, 1] > 0.5  # correlated, not white
    assert np.array_equal(meant, -SCALE * _expert_at_visited(lane, 3, _executed_actions(drive))[:, 0])  # where it led
    assert drive.name == "lane-3-dart2"


def _expert_at_visited(adapter, seed, actions):
    """The expert's action at each state that `actions` lead to from `reset(seed)`."""
    adapter.reset(seed)
    found = []
    for action in actions:
        found.append(adapter.expert_action())
        adapter.step(action)
    return np.array(found)


class StatePilot:
    """The expert plugged in as the model: it reads the car's place from the frame and answers as the expert."""
    targets = ["steering", "throttle"]

    def reset(self):
        pass

    def step(self, frame, time_s):
        action = expert(SimpleNamespace(place=(int(np.argmax(frame[0, :, 0])) - 100) // 6))
        return {"steering": -SCALE * action[0], "throttle": action[1]}


@pytest.mark.parametrize("full", [False, True])
def test_the_expert_plugged_in_as_the_model_reproduces_the_experts_return_exactly(lane, full):
    seeds = [0, 1, 2]
    result = el.evaluate(lane, {"model": el.ModelDriver(StatePilot(), full), **el.references(lane)}, seeds, full)
    recorded = [record_episode(lane, seed, (HEIGHT, WIDTH)).meta["return"] for seed in seeds]
    for name in ("model", "expert (ceiling)"):
        assert [result[name]["per_episode"][str(s)]["return"] for s in seeds] == recorded
    floor = result["zero steering (floor)"]["overall"]
    assert floor["return_mean"] < result["model"]["overall"]["return_mean"] and floor["departures"] >= 1


def test_steer_drive_env_scores_the_expert_as_recorded_and_a_model_beside_it(tmp_path, capsys):
    spec, cache, out = _spec_file(tmp_path), tmp_path / "cache", tmp_path / "out"
    steer("record", "--env", spec, "--episodes", "3", "--seed", "10", "--out", cache)
    assert "3 episodes of lane (66x200, crop 0,0.131579)" in capsys.readouterr().out
    torch.manual_seed(0)
    model = create_model("pilotnet", targets=["steering", "throttle"], frame_shape=(3, HEIGHT, WIDTH))
    save_checkpoint(tmp_path / "ckpt", model)
    steer("drive", "--env", spec, "--checkpoint", tmp_path / "ckpt", "--episodes", "3", "--seed", "10", "--out", out,
          "--video", tmp_path / "episode.mp4")
    printed = capsys.readouterr().out
    assert "expert (ceiling)" in printed and "zero steering (floor)" in printed and "departures" in printed
    result = json.loads((out / "closed_loop.json").read_text())["drivers"]
    returns = {d.name: d.meta["return"] for d in _metas(cache)}
    assert {f"lane-{s}": result["expert (ceiling)"]["per_episode"][str(s)]["return"] for s in (10, 11, 12)} == returns
    assert set(result) == {str(tmp_path / "ckpt"), "expert (ceiling)", "zero steering (floor)"}
    assert (tmp_path / "episode.mp4").stat().st_size > 0 and (tmp_path / "episode.png").exists()


def steer(*argv) -> None:
    main([str(a) for a in argv])


def _metas(cache):
    return [SimpleNamespace(name=e["name"], meta=e["meta"]) for e in FrameCache(cache).manifest["drives"]]


def test_a_checkpoint_trained_on_cropped_frames_streams_from_raw_frames_as_evaluation_scores_the_cache(tmp_path,
                                                                                                     refuse):
    from steer.evaluate.evaluate import evaluate_run
    from steer.train.config import TrainConfig
    from steer.train.loop import train

    spec, cache = _spec_file(tmp_path), tmp_path / "cache"
    steer("record", "--env", spec, "--episodes", "4", "--seed", "0", "--out", cache)
    run = train(TrainConfig(cache=str(cache), out=str(tmp_path / "run"), model="pilotnet", epochs=1, window=1,
                            stride=1, stateful=False, split=[0.5, 0.25, 0.25], targets=["steering", "throttle"],
                            precision="fp32", seed=0))
    evaluate_run(run, report=False)
    with open(run / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    adapter = EnvAdapter(load_spec(spec))
    pilot = Pilot(run / "best")  # no crop given: the checkpoint's
    assert pilot.crop == (0, DASH / (HEIGHT + DASH))
    for name in sorted({r["drive"] for r in rows}):
        frames, _, _ = _stepped(adapter, int(name.split("-")[1]))
        streamed = [pilot.step(frame, i / 10) for i, frame in enumerate(frames)]
        offline = [r for r in rows if r["drive"] == name]
        assert len(streamed) == len(offline)
        for target in ("steering", "throttle"):
            assert np.allclose([p[target] for p in streamed], [float(r[f"pred_{target}"]) for r in offline],
                               rtol=1e-4, atol=1e-5)
    with pytest.warns(UserWarning, match=r"cropped \(0.0, 0.13\d*\).*given a crop of \(0.0, 0.0\)"):
        Pilot(run / "best", crop=(0.0, 0.0))
    with pytest.warns(UserWarning, match="frames of 200x40 pixels, where the training frames were made from 200x76"):
        Pilot(run / "best").step(np.zeros((40, WIDTH, 3), np.uint8), 0.0)
    refuse(["drive", "--env", spec, "--checkpoint", run / "best", "--seed", "3"], tmp_path, "seed 3", "--seed")


def test_record_refuses_a_size_that_stretches_the_image_and_names_one_that_keeps_its_aspect(tmp_path, refuse):
    refuse(["record", "--env", _spec_file(tmp_path), "--episodes", "1", "--out", tmp_path / "c", "--size", "66x100"],
           tmp_path, "--size 66x100", "--size 66x200", "--stretch")


def test_an_env_named_by_gymnasium_id_without_gymnasium_says_what_to_install(tmp_path, refuse, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "gymnasium", None)
    refuse(["record", "--env", _spec_file(tmp_path, env="CarRacing-v3"), "--out", tmp_path / "c"], tmp_path,
           "CarRacing-v3", "pip install -e '.[gym]'")


def test_a_spec_with_an_unknown_key_is_refused_naming_the_file_and_key(tmp_path, refuse):
    refuse(["record", "--env", _spec_file(tmp_path, steer={"index": 0}), "--out", tmp_path / "c"], tmp_path,
           "lane.json", "'steer'")


def test_carracing_records_and_drives_through_the_example_spec(tmp_path):
    pytest.importorskip("Box2D", reason="CarRacing-v3 needs gymnasium[box2d]: pip install -e '.[gym]'")
    pytest.importorskip("gymnasium", reason="CarRacing-v3 needs gymnasium[box2d]: pip install -e '.[gym]'")
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    adapter = EnvAdapter(load_spec(EXAMPLES / "envs" / "carracing.json"))
    drive = record_episode(adapter, 7, (84, 96), max_steps=60)
    assert drive.frames.shape == (60, 84, 96, 3) and drive.meta["source_shape"] == [96, 96]
    steering = drive.signals["steering"].values
    assert np.array_equal(steering, -10.0 * np.clip(steering / -10.0, -1, 1))  # within the action space
    expert_run = el.drive_episode(adapter, 7, el.ExpertDriver(), max_steps=60)
    assert expert_run.rewards.sum() == drive.meta["return"]  # the same seed, the same episode
    assert np.array_equal(expert_run.asked_rad, steering)
    adapter.close()


class HoldPilot:
    """A model that holds its wheel at `steering` rad and asks for no throttle."""
    targets = ["steering", "throttle"]

    def __init__(self, steering: float):
        self.steering = steering

    def reset(self):
        pass

    def step(self, frame, time_s):
        return {"steering": self.steering, "throttle": 0.0}


def _executed_actions(drive) -> np.ndarray:
    pedal = drive.signals["throttle"].values - drive.signals["brake"].values
    return np.column_stack([drive.signals["steering"].values / -SCALE, pedal])


@pytest.mark.parametrize("full", [False, True])
def test_a_dagger_episode_is_labelled_with_the_experts_action_at_the_states_the_mixed_driving_reached(lane, full):
    from steer.envs.dagger import Mixed

    hands = Mixed(el.ModelDriver(HoldPilot(2.0), full), 0.25, full, {"round": 1, "checkpoint": "ckpt"})
    drive = record_episode(lane, 4, (HEIGHT, WIDTH), hands)
    visited = _expert_at_visited(lane, 4, _executed_actions(drive))
    meant = drive.signals["steering_meant"].values
    assert np.array_equal(meant, -SCALE * visited[:, 0])  # the expert's steering at each state the mix reached
    assert np.array_equal(drive.signals["throttle_meant"].values - drive.signals["brake_meant"].values, visited[:, 1])
    assert np.allclose(drive.signals["steering"].values, 0.25 * meant + 0.75 * 2.0)  # β x expert + (1 - β) x model
    pedal = drive.signals["throttle"].values - drive.signals["brake"].values
    assert np.allclose(pedal, 0.25 * visited[:, 1] if full else visited[:, 1])  # the model asks for no throttle
    assert drive.name == "lane-4-dagger-r1" and drive.meta["source"] == "dagger" and drive.meta["beta"] == 0.25


def test_dagger_in_an_env_never_drives_a_held_out_validation_or_recorded_seed(tmp_path):
    from steer.envs.dagger import EnvDaggerConfig, EnvEpisodes
    from steer.errors import SteerError
    from steer.train.config import TrainConfig

    config = EnvDaggerConfig(rounds=3, episodes=4, seed=50, val_episodes=2, val_seed=90, held_out=list(range(100, 110)))
    config.check()
    driven = [s for r in (1, 2, 3) for s in config.seeds(r)]
    assert len(set(driven)) == 12 and not set(driven) & (set(config.held_out) | set(config.val_seeds()))
    for changes, flag in (({"seed": 95}, "--seed"), ({"seed": 88}, "--seed"), ({"val_seed": 105}, "--val-seed")):
        with pytest.raises(SteerError, match=flag):
            replace(config, **changes).check()
    spec, cache = _spec_file(tmp_path), tmp_path / "cache"
    steer("record", "--env", spec, "--episodes", "2", "--seed", "60", "--out", cache)
    base = TrainConfig(cache=str(cache))
    for changes, flag in (({"seed": 55}, "--seed"), ({"seed": 0, "val_seed": 61}, "--val-seed")):
        with pytest.raises(SteerError, match=f"{flag} .* 6[01]"):
            EnvEpisodes(EnvAdapter(load_spec(spec)), base, replace(config, **changes))


def test_steer_dagger_env_adds_labelled_episodes_to_training_and_drive_then_refuses_their_seeds(tmp_path, capfd,
                                                                                               refuse):
    from steer.train.config import TrainConfig
    from steer.train.loop import train

    spec, cache, out = _spec_file(tmp_path), tmp_path / "cache", tmp_path / "dagger"
    steer("record", "--env", spec, "--episodes", "4", "--seed", "0", "--out", cache)
    run = train(TrainConfig(cache=str(cache), out=str(tmp_path / "run"), model="pilotnet", epochs=1, window=1,
                            stride=1, stateful=False, split=[0.5, 0.25, 0.25], targets=["steering", "throttle"],
                            precision="fp32", seed=0))
    steer("dagger", "--env", spec, "--run", run, "--out", out, "--rounds", "1", "--episodes", "2", "--seed", "50",
          "--val-episodes", "1", "--val-seed", "60", "--held-out", "100-109", "--epochs", "1")
    assert "round 1: validation return" in capfd.readouterr().out
    added = [e for e in FrameCache(cache).manifest["drives"] if e["meta"]["source"] == "dagger"]
    assert [e["name"] for e in added] == ["lane-50-dagger-r1", "lane-51-dagger-r1"]
    assert all(e["meta"]["round"] == 1 and e["meta"]["beta"] == 0.5 and e["meta"]["checkpoint"] == str(run / "best")
               for e in added)
    for drive in FrameCache(cache).by_name([e["name"] for e in added]):
        s = drive.signals
        executed = np.column_stack([s["steering"] / -SCALE, s["throttle"] - s["brake"]])
        visited = _expert_at_visited(EnvAdapter(load_spec(spec)), int(drive.name.split("-")[1]), executed)
        assert np.array_equal(s["steering_meant"], -SCALE * visited[:, 0])  # the expert's, where the mix drove
    info = json.loads((out / "round-1" / "run.json").read_text())
    original = json.loads((run / "run.json").read_text())["split"]
    assert info["split"]["val"] == original["val"] and info["split"]["test"] == original["test"]
    assert set(info["split"]["train"]) == set(original["train"]) | {e["name"] for e in added}
    assert info["config"]["meant"] == ["steering", "throttle"] and info["config"]["init"] == str(run / "best")
    record = json.loads((out / "dagger.json").read_text())
    assert [r["round"] for r in record["rounds"]] == [0, 1] and record["simulator"]["validation_seeds"] == [60]
    assert record["best_round"] in (0, 1)
    assert record["rounds"][1]["driven"]["episodes"] == 2 and "expert_pct" in record["rounds"][1]["validation"]
    refuse(["drive", "--env", spec, "--checkpoint", out / "round-1" / "best", "--seed", "51", "--episodes", "1"],
           tmp_path, "seed 51", "--seed")
    refuse(["dagger", "--env", spec, "--run", run, "--out", tmp_path / "again", "--seed", "100", "--held-out",
            "100-109"], tmp_path, "--seed 100", "--held-out")
