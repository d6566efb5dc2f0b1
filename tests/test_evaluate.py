import csv
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED

from steer.cli import main
from steer.evaluate.metrics import errors, scores_with_baselines


def test_errors_match_a_hand_computation():
    truth = np.array([[0.0, 10.0], [1.0, 12.0], [-1.0, 14.0]])
    preds = np.array([[0.5, 10.0], [1.0, 9.0], [-2.0, 14.0]])
    e = errors(truth, preds, ["steering", "speed"])
    assert e["steering"]["rmse"] == pytest.approx(np.sqrt((0.25 + 0 + 1) / 3))
    assert e["steering"]["mae"] == pytest.approx(0.5)
    assert e["speed"]["rmse"] == pytest.approx(np.sqrt(3.0))
    scores = scores_with_baselines(truth, preds, np.array([0.0, 12.0]), ["steering", "speed"])
    assert scores["zero"]["speed"]["rmse"] == pytest.approx(np.sqrt((100 + 144 + 196) / 3))
    assert scores["mean"]["speed"]["mae"] == pytest.approx(4 / 3)


def test_cli_world_train_evaluate(tmp_path, capfd):
    cache, run = tmp_path / "cache", tmp_path / "run"
    main(["world", "--out", str(cache), "--drives", "4", "--frames", "30", "--processes", "1", "--seed", "2"])
    main(["train", "--cache", str(cache), "--out", str(run), "--model", "pilotnet", "--epochs", "1",
          "--window", "1", "--stride", "1", "--no-stateful", "--batch-size", "8", "--split", "0.5,0.25,0.25"])
    capfd.readouterr()
    main(["evaluate", "--run", str(run)])
    out, err = capfd.readouterr()
    assert "baseline: zero" in out and "baseline: train mean" in out
    assert "VP80" not in err and (run / "report.html").exists()  # OpenCV's tag warning muted
    metrics = json.loads((run / "metrics.json").read_text())
    for who in ("model", "zero", "mean"):
        for target in ("steering", "speed", "throttle"):
            assert set(metrics[who][target]) == {"rmse", "mae"}
    assert metrics["units"] == {"steering": "rad", "speed": "m/s", "throttle": "1"}
    rows = list(csv.DictReader((run / "predictions.csv").open()))
    assert len(rows) == metrics["frames"] == 30 and rows[0]["drive"] == metrics["drives"][0]
    assert {"true_speed", "pred_speed", "time_s"} <= set(rows[0])
    assert (run / "predictions.png").stat().st_size > 10_000


def test_evaluating_on_another_cache_takes_all_its_drives_and_metrics_only_writes_no_report(tiny_cache, tmp_path,
                                                                                             capsys):
    from steer.train.config import TrainConfig
    from steer.train.loop import train
    from steer.world.simulate import WorldConfig, generate_drives

    run = train(TrainConfig(cache=str(tiny_cache.root), out=str(tmp_path / "run"), model="pilotnet", epochs=1,
                            window=1, stride=1, stateful=False, split=[0.5, 0.25, 0.25]))
    from steer.data.cache import FrameCache

    other = FrameCache.create(tmp_path / "other", generate_drives(WorldConfig(frames_per_drive=12), 3, seed=9))
    main(["evaluate", "--run", str(run), "--cache", str(other.root), "--metrics-only", "--out", str(tmp_path / "o")])
    metrics = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert metrics["drives"] == [d.name for d in other.drives] and metrics["frames"] == 36
    assert "scored on 3 drives" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["metrics.json", "predictions.csv"]


def test_demo_compares_both_models_beside_the_baselines(tmp_path, capsys):
    from steer.demo import run_demo

    summary = run_demo(tmp_path, drives=4, frames=24, epochs=1, loop_roads=1, loop_seconds=1.0,
                       dagger={"roads": 1, "seconds": 3.0, "epochs": 1, "val_roads": 1, "val_seconds": 1.0})
    models = ["pilotnet", "cnn-lstm", "pilotnet + dagger", "cnn-lstm + dagger"]
    assert set(summary) == {*models, "closed_loop", "closed_loop_speed_model", "machine", "stages_s"}
    assert list(summary["stages_s"]) == ["world", "pilotnet", "cnn-lstm", "pilotnet dagger", "cnn-lstm dagger",
                                         "closed loop"]
    assert set(summary["machine"]) == {"cpu", "amx_bf16", "avx512_bf16", "torch_threads", "precision"}
    assert summary["machine"]["precision"] == {label: summary[label]["precision"] for label in models}
    for key in ("closed_loop", "closed_loop_speed_model"):
        assert set(summary[key]) == {*models, "world driver (ceiling)", "zero steering (floor)"}
        assert "speed_rmse_mps" in summary[key]["pilotnet"]
    dagger = json.loads((tmp_path / "cnn-lstm-dagger" / "dagger.json").read_text())
    assert summary["cnn-lstm + dagger"]["checkpoint"] == dagger["rounds"][dagger["best_round"]]["checkpoint"]
    assert dagger["rounds"][-1]["driven"]["frames"] == 60  # one road of 3 s at 20 frames/s
    best = max(models, key=lambda label: summary["closed_loop"][label]["autonomy_pct"])
    run = tmp_path / best if "dagger" not in best else Path(summary[best]["checkpoint"]).parent
    assert "id='closed-loop'" in (run / "report.html").read_text()
    written = json.loads((tmp_path / "summary.json").read_text())
    assert written == summary
    assert list(json.loads((tmp_path / "compare.json").read_text())["models"]) == models
    assert all(summary[label]["drives"] == summary["pilotnet"]["drives"] for label in models)  # the same frames
    table = capsys.readouterr().out
    for row in (*models, "baseline: zero", "baseline: train mean", "zero steering (floor)"):
        assert row in table
    assert f"measured on {summary['machine']['cpu']}" in table and "torch threads, precision pilotnet" in table


def test_demo_refuses_dagger_settings_out_of_range_before_writing(tmp_path, refuse):
    refuse(["demo", "--out", tmp_path / "demo", "--dagger-rounds", "-1"], tmp_path, "--dagger-rounds")
    refuse(["demo", "--out", tmp_path / "demo", "--dagger-roads", "0"], tmp_path, "--dagger-roads")


def test_scoring_a_predictions_file_reproduces_a_hand_computed_rmse(tmp_path, capsys):
    truth = tmp_path / "truth.csv"
    truth.write_text("frame_id,steering_angle,public\n1,0.0,1\n2,0.5,1\n3,-1.0,0\n4,1.0,0\n")
    preds = tmp_path / "preds.csv"
    preds.write_text("frame_id,steering_angle\n4,0.0\n3,-1.0\n2,0.0\n1,0.3\n5,9.9\n")  # any order, extras ignored
    main(["evaluate", "--predictions", str(preds), "--truth", str(truth), "--out", str(tmp_path / "score.json")])
    scores = json.loads((tmp_path / "score.json").read_text())["scores"]
    assert scores["all"]["model"]["steering_angle"]["rmse"] == pytest.approx(np.sqrt((0.09 + 0.25 + 0 + 1) / 4))
    assert scores["public"]["model"]["steering_angle"]["rmse"] == pytest.approx(np.sqrt((0.09 + 0.25) / 2))
    assert scores["private"]["model"]["steering_angle"]["mae"] == pytest.approx(0.5)
    assert scores["public"]["zero"]["steering_angle"]["rmse"] == pytest.approx(np.sqrt(0.25 / 2))
    assert "public" in capsys.readouterr().out
    preds.write_text("frame_id,steering_angle\n1,0.3\n2,0.0\n")
    from steer.evaluate.score import score_files

    with pytest.raises(ValueError, match="no prediction for 2 frame_id"):
        score_files(preds, truth)


LEADERBOARD = SHARED / "signals-only" / "challenge2" / "leaderboard"


@pytest.mark.skipif(not LEADERBOARD.is_dir(), reason=f"Challenge 2 leaderboard files not found at {LEADERBOARD}")
@pytest.mark.parametrize("team,public,private", [("komanda", 0.0482910511682, 0.0512445872957),
                                                   ("rambo", 0.0578777529417, 0.0559772239809)])
def test_scoring_reproduces_the_published_challenge2_leaderboard(team, public, private):
    from steer.evaluate.score import score_files

    scores = score_files(LEADERBOARD / f"{team}.csv", LEADERBOARD / "CH2_final_evaluation.csv")["scores"]
    assert scores["public"]["model"]["steering_angle"]["rmse"] == pytest.approx(public, abs=1e-12)
    assert scores["private"]["model"]["steering_angle"]["rmse"] == pytest.approx(private, abs=1e-12)
    assert scores["public"]["zero"]["steering_angle"]["rmse"] == pytest.approx(0.20678229236453141, abs=1e-12)


def test_view_writes_an_overlay_video_and_a_still(tiny_cache, tmp_path):
    import cv2

    from steer.evaluate.evaluate import view_drive
    from steer.train.config import TrainConfig
    from steer.train.loop import train

    run = train(TrainConfig(cache=str(tiny_cache.root), out=str(tmp_path / "run"), model="pilotnet", epochs=1,
                            window=1, stride=1, stateful=False, split=[0.5, 0.25, 0.25]))
    drive = tiny_cache.drives[0]
    out = view_drive(run, drive.name, tmp_path / "view.mp4")
    video = cv2.VideoCapture(str(out))
    count = 0
    while video.read()[0]:
        count += 1
    assert count == len(drive) and video.get(cv2.CAP_PROP_FRAME_WIDTH) == 600  # enlarged 3x
    assert cv2.imread(str(tmp_path / "view.png")).shape == (198, 600, 3)
    with pytest.raises(OSError, match="cannot open a video writer"):  # not a silent empty file
        view_drive(run, drive.name, tmp_path / "no-such-folder" / "view.mp4")


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not found (.ci/run installs Debian's chromium)")
def test_html_report_shows_the_metrics_table_in_headless_chromium(tmp_path):
    cache, run = tmp_path / "cache", tmp_path / "run"
    main(["world", "--out", str(cache), "--drives", "3", "--frames", "24", "--processes", "1"])
    main(["train", "--cache", str(cache), "--out", str(run), "--model", "pilotnet", "--epochs", "1",
          "--window", "1", "--stride", "1", "--no-stateful"])
    main(["evaluate", "--run", str(run)])
    metrics = json.loads((run / "metrics.json").read_text())
    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", (run / "report.html").as_uri()],
        capture_output=True, text=True, timeout=120).stdout
    table = dom[dom.index("<table id=\"metrics\">"):dom.index("</table>")]
    for row in ("pilotnet", "baseline: zero", "baseline: train mean"):
        assert row in table
    assert f"{metrics['model']['steering']['rmse']:.4f}" in table
    assert "<video" in dom and "data:video/webm;base64," in dom


def test_scoring_matches_on_nearest_time_within_a_tolerance(tmp_path):
    from steer.evaluate.score import score_files

    truth = tmp_path / "truth.csv"
    truth.write_text("time_s,steering\n0.00,0.0\n0.05,1.0\n0.10,2.0\n")
    preds = tmp_path / "preds.csv"
    preds.write_text("time_s,steering\n0.101,2.5\n0.002,0.0\n0.049,1.0\n")
    scores = score_files(preds, truth, key="time_s", tolerance=0.005)["scores"]
    assert scores["all"]["model"]["steering"]["rmse"] == pytest.approx(np.sqrt(0.25 / 3))
    with pytest.raises(ValueError, match="no prediction within 0.0005 of 0.00"):
        score_files(preds, truth, key="time_s", tolerance=0.0005)
