"""Stored features of a frozen encoder: every frame of a frame cache encoded once, then read back by
training and evaluation in place of the frames.

    cache/features/<key>/manifest.json   the encoder's description, and per drive: its hash in the frame
                                         cache when it was encoded, and its frame count
    cache/features/<key>/<drive>.npy     (N, F) float32, memory-mapped when read

The key is a digest of the encoder (its configuration, the frame shape and its weights), so another
encoder, or the same one with other weights, gets a folder of its own. Within a folder a drive is
encoded again when its hash in the frame cache differs from the one recorded (it was re-imported with
other frames or signals), and drives no longer in the cache are dropped. Each drive is encoded in time
order, chunk by chunk with the encoder's carried state, so an encoder that looks at frame differences
sees the same previous frame as when it streams. Drives are written under a temporary name and
renamed, and the manifest replaced after each, as in the frame cache: an interrupted run keeps the
drives it finished.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from tqdm import tqdm

from steer.data.cache import CachedDrive, FrameCache, part_of, read_manifest
from steer.durable import commit, write_json

MANIFEST = "manifest.json"


class Encoder(Protocol):
    feature_width: int

    def encoder_key(self) -> str:
        """A digest of everything the features depend on."""

    def encoder_description(self) -> dict:
        """What the encoder is, for a person reading the manifest."""

    def encode(self, frames: torch.Tensor, carried: tuple | None) -> tuple[torch.Tensor, tuple]:
        """Features (B, T, F) of uint8 frames (B, T, C, H, W), and the state carried to the next chunk."""


def features_folder(root: str | Path, encoder: Encoder) -> Path:
    return Path(root) / "features" / encoder.encoder_key()


def update_features(root: str | Path, encoder: Encoder, chunk: int = 64) -> Path:
    """The folder of `encoder`'s features for the frame cache at `root`, after encoding the drives
    that are missing or stale there."""
    folder = features_folder(root, encoder)
    hashes = {d["name"]: d["hash"] for d in read_manifest(root)["drives"]}
    manifest = (json.loads((folder / MANIFEST).read_text()) if (folder / MANIFEST).exists()
                else {"encoder": encoder.encoder_description(), "drives": {}})
    stale = [name for name, h in hashes.items()
             if manifest["drives"].get(name, {}).get("hash") != h or not (folder / f"{name}.npy").exists()]
    gone = set(manifest["drives"]) - set(hashes)
    if not stale and not gone:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    for name in gone:
        (folder / f"{name}.npy").unlink(missing_ok=True)
        del manifest["drives"][name]
    drives = FrameCache(root).by_name(stale)
    with tqdm(total=sum(len(d.frames) for d in drives), unit="frame", unit_scale=True, leave=False,
              desc=f"features {folder.name}") as progress:
        for drive in drives:
            _write_drive(folder, drive, encoder, chunk, progress)
            manifest["drives"][drive.name] = {"hash": hashes[drive.name], "frames": len(drive.frames)}
            write_json(folder / MANIFEST, manifest)
    write_json(folder / MANIFEST, manifest)
    return folder


def drive_features(drive: CachedDrive, encoder: Encoder) -> np.ndarray:
    """(N, F) float32 features of a cached drive (or part of one), memory-mapped; computed first where
    they are missing or stale."""
    if drive.cache is None:
        raise ValueError(f"drive {drive.name!r} was not opened from a frame cache, so it has no stored features")
    base, span = part_of(drive.name)
    features = np.load(update_features(drive.cache, encoder) / f"{base}.npy", mmap_mode="r")
    return features[span[0]:span[1]] if span else features


@torch.no_grad()
def _write_drive(folder: Path, drive: CachedDrive, encoder: Encoder, chunk: int, progress: tqdm) -> None:
    tmp = folder / f".{drive.name}.{os.getpid()}.tmp.npy"
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(len(drive.frames), encoder.feature_width))
    carried = None
    for start in range(0, len(drive.frames), chunk):
        frames = torch.from_numpy(np.array(drive.frames[start:start + chunk]))[None]  # copy out of the memmap
        features, carried = encoder.encode(frames, carried or None)
        out[start:start + frames.shape[1]] = features[0].cpu().numpy()
        progress.update(frames.shape[1])
    out.flush()
    del out
    commit(tmp, folder / f"{drive.name}.npy")

