import json

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from steer.data.cache import FrameCache
from steer.data.drive import Drive
from steer.data.features import features_folder
from steer.drive.pilot import Pilot
from steer.models import create_model, load_model
from steer.models.sequence import predict_sequence
from steer.train.checkpoint import save_checkpoint
from steer.train.config import TrainConfig
from steer.train.loop import train
from steer.world.simulate import WorldConfig, generate_drives

TARGETS = ["steering", "speed"]


def _model(seed: int = 0, **kwargs):
    torch.manual_seed(seed)
    model = create_model("features-lstm", targets=TARGETS, frame_shape=(3, 66, 200), features=16, hidden=8, **kwargs)
    model.set_target_stats(torch.tensor([0.0, 12.0]), torch.tensor([0.2, 4.0]))
    return model


def _counting(model):
    """The model, with a count of the chunks its encoder encodes."""
    calls, encode = [], model.encode
    model.encode = lambda *a: calls.append(1) or encode(*a)
    return model, calls


def _stamp(path):
    return path.stat().st_ino, path.stat().st_mtime_ns


def test_features_cache_is_reused_and_invalidated(tmp_path):
    drives = list(generate_drives(WorldConfig(frames_per_drive=10), 2, seed=5))
    cache = FrameCache.create(tmp_path / "cache", drives)
    model, calls = _counting(_model())
    first = [np.array(model.inputs_of(d)) for d in cache.drives]
    folder = features_folder(cache.root, model)
    assert len(calls) == 2 and first[0].shape == (10, model.feature_width) and first[0].dtype == np.float32
    with torch.no_grad():
        frames = torch.from_numpy(np.array(cache.drives[0].frames))[None]
        assert np.allclose(first[0], _model().encode(frames, None)[0][0])
    stamps = [_stamp(folder / f"{d.name}.npy") for d in drives]

    reopened = FrameCache(cache.root)  # nothing changed: read back, not encoded again
    assert all(np.array_equal(model.inputs_of(d), f) for d, f in zip(reopened.drives, first))
    assert len(calls) == 2 and [_stamp(folder / f"{d.name}.npy") for d in drives] == stamps

    changed = drives[0]  # the same drive re-imported with other frames: that drive alone is encoded again
    cache = FrameCache.create(cache.root, [Drive(changed.name, 255 - changed.frames, changed.timestamps_s,
                                                 changed.signals, changed.meta)])
    again = [np.array(model.inputs_of(d)) for d in cache.by_name([d.name for d in drives])]
    assert len(calls) == 3 and _stamp(folder / f"{drives[1].name}.npy") == stamps[1]
    assert not np.allclose(again[0], first[0]) and np.array_equal(again[1], first[1])

    other, other_calls = _counting(_model())  # another encoder: other weights, another folder
    with torch.no_grad():
        other.encoder[0].weight.mul_(2)
    other.inputs_of(cache.drives[0])
    assert features_folder(cache.root, other) != folder and len(other_calls) == 2
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["drives"][drives[0].name]["hash"] == cache.hashes()[drives[0].name]


def test_features_of_a_difference_encoder_match_the_frames_it_streams(tiny_cache):
    """Features computed over the whole drive in time order give what the model computes from frames,
    parts of a drive (a split by time) included."""
    model = _model(encoder={"kind": "pilotnet", "inputs": "difference"}).eval()
    drive = tiny_cache.drives[0]
    assert np.allclose(predict_sequence(model, model.inputs_of(drive), chunk=7),
                       predict_sequence(model, drive.frames, chunk=7), atol=1e-5)
    part, = tiny_cache.by_name([f"{drive.name}@10:30"])
    assert np.array_equal(model.inputs_of(part), model.inputs_of(drive)[10:30])


def test_trains_on_a_pilotnet_trunk_frozen_and_self_contained(tiny_cache, tmp_path):
    common = dict(cache=str(tiny_cache.root), targets=TARGETS, batch_size=2, epochs=1, split=[0.5, 0.25, 0.25])
    pilotnet = train(TrainConfig(out=str(tmp_path / "pilotnet"), model="pilotnet", window=4, **common))
    run = train(TrainConfig(out=str(tmp_path / "chauffeur"), model="features-lstm", window=10,
                            model_args={"encoder": str(pilotnet / "best"), "hidden": 8, "features": 16}, **common))
    trunk = load_model(pilotnet / "best").trunk.state_dict()
    model = load_model(run / "best")
    assert model.config()["encoder"]["source"] == str(pilotnet / "best")
    assert all(torch.equal(v, model.encoder.state_dict()[k]) for k, v in trunk.items())  # untouched by training
    assert not any(p.requires_grad for p in model.encoder.parameters()) and not model.train().encoder.training

    from steer.evaluate.evaluate import evaluate_run

    (pilotnet / "best" / "model.safetensors").unlink()  # the checkpoint needs nothing from its encoder's
    metrics = evaluate_run(run, out=tmp_path / "eval")
    assert metrics["frames"] > 0 and np.isfinite(metrics["model"]["steering"]["rmse"])


def _tiny_backbone(path, size=(32, 32)):
    """An ONNX 'backbone' of a fixed input size: a convolution, ReLU, global average pooling."""
    weights = numpy_helper.from_array(np.random.default_rng(0).normal(0, 0.3, (4, 3, 3, 3)).astype(np.float32), "w")
    nodes = [helper.make_node("Conv", ["image", "w"], ["c"], strides=[2, 2]), helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("GlobalAveragePool", ["r"], ["p"]), helper.make_node("Flatten", ["p"], ["features"])]
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, *size])
    graph = helper.make_graph(nodes, "backbone", [image],
                              [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 4])], [weights])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)
    return path


def test_an_onnx_backbone_trains_streams_and_travels_in_the_checkpoint(tiny_cache, tmp_path):
    from steer.drive.export import export_onnx

    backbone = _tiny_backbone(tmp_path / "backbone.onnx")
    model = _model(encoder=f"onnx:{backbone}")
    assert model.feature_width == 4 and model.config()["encoder"]["bytes"] == backbone.stat().st_size
    drive = tiny_cache.drives[1]
    offline = predict_sequence(model, model.inputs_of(drive))
    save_checkpoint(tmp_path / "ckpt", model)
    backbone.unlink()
    pilot = Pilot(tmp_path / "ckpt")
    streamed = [list(pilot.step(np.array(f).transpose(1, 2, 0), t).values())
                for f, t in zip(drive.frames, drive.timestamps_s)]
    assert np.allclose(streamed, offline, atol=1e-4)
    with pytest.raises(ValueError, match="ONNX backbone cannot be exported"):
        export_onnx(load_model(tmp_path / "ckpt"), tmp_path / "step.onnx")


def test_encoders_that_are_not_there_are_clear_errors(tmp_path):
    for spec in (f"onnx:{tmp_path}/resnet18.onnx", str(tmp_path / "runs" / "best")):
        with pytest.raises(FileNotFoundError, match="does not exist; steer never downloads weights"):
            _model(encoder=spec)
    with pytest.raises(ValueError, match="timm backbones are not supported"):
        _model(encoder="timm:resnet18:weights.safetensors")
    save_checkpoint(tmp_path / "cnn", create_model("cnn-lstm", targets=TARGETS))
    with pytest.raises(ValueError, match="is a cnn-lstm checkpoint"):
        _model(encoder=str(tmp_path / "cnn"))
