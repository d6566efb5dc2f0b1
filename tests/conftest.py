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


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under `root` with its size and modification time: what a refused command must not change."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def refuse(capfd):
    """`refuse(argv, root, *names)`: run `steer argv` and assert a clean refusal: a non-zero exit, one
    `steer <verb>: error: ...` line on stderr naming each of `names` (a file, line, frame, drive or
    flag), no traceback, and nothing new or changed under `root`. Returns the error line."""
    from steer.cli import main

    def check(argv: list[str], root: Path, *names: str) -> str:
        before = snapshot(root)
        with pytest.raises(SystemExit) as exit_:
            main([str(a) for a in argv])
        err = capfd.readouterr().err
        assert exit_.value.code not in (0, None), err
        assert "Traceback" not in err, err
        lines = [line for line in err.splitlines() if line.strip()]
        assert lines and lines[-1].startswith(f"steer {argv[0]}: error: "), err
        assert len(lines) <= 2, err
        for name in names:
            assert str(name) in lines[-1], f"{name!r} not named in: {lines[-1]}"
        assert snapshot(root) == before, "a refused command changed files"
        return lines[-1]
    return check
