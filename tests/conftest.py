import os
from pathlib import Path

import numpy as np
import pytest

from steer.data.cache import FrameCache
from steer.models import MODELS
from steer.world.simulate import WorldConfig, generate_drives

# Real recordings beside the project (never copied into it); tests that need them skip where absent.
SHARED = Path(os.environ.get("STEER_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


# Every registered model, and the options of theirs that change the architecture: the ones that stream,
# and the ones that run offline only.
MODEL_VARIANTS = [(name, {}) for name in sorted(MODELS)] + [
    ("cnn-lstm", {"cell": "gru", "layers": 2, "dropout": 0.2}), ("cnn-lstm", {"cell": "rnn"}),
    ("cnn-lstm", {"motion": False, "inputs": "both"}), ("pilotnet", {"inputs": "difference"}),
    ("features-lstm", {"encoder": {"kind": "pilotnet", "inputs": "difference"}, "cell": "gru", "features": 32}),
    ("komanda", {"feedback": True, "cell": "gru"}), ("komanda", {"clip": 2, "inputs": "difference"})]
OFFLINE_VARIANTS = [("cnn-lstm", {"bidirectional": True, "layers": 2}), ("features-lstm", {"bidirectional": True}),
                    ("komanda", {"bidirectional": True})]


@pytest.fixture(scope="session")
def tiny_world() -> WorldConfig:
    return WorldConfig(frames_per_drive=40)


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory, tiny_world) -> FrameCache:
    """Four short synthetic drives in a frame cache, shared by the tests that only read it."""
    root = tmp_path_factory.mktemp("cache")
    return FrameCache.create(root, generate_drives(tiny_world, 4, seed=7))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
