"""The renderer as it was before it was compiled (steer.world.camera): whole-array numpy, about 5x slower.

Kept only as the reference that the compiled renderer's frames are checked against (tests/test_world.py)
and measured beside (bench/world.py); remove it once those frames have been proven equal for long enough.
"""
from __future__ import annotations

import numpy as np

from steer.world.camera import (
    ASPHALT,
    DASH_M,
    DASH_PERIOD_M,
    GRASS,
    LANE_WIDTH_M,
    LINE_WIDTH_M,
    PAINT,
    SHOULDER,
    TEXTURE_AMPLITUDE,
    TEXTURE_CELL_ACROSS_M,
    TEXTURE_CELL_ALONG_M,
    Renderer,
    Scenery,
)
from steer.world.road import Road


def _texture(along_m: np.ndarray, across_m: np.ndarray) -> np.ndarray:
    """Deterministic value noise in -1..1 on a grid of cells keyed on road coordinates."""
    i = np.floor(along_m / TEXTURE_CELL_ALONG_M).astype(np.int64)
    j = np.floor(across_m / TEXTURE_CELL_ACROSS_M).astype(np.int64)
    h = (i * 73856093) ^ (j * 19349663)
    h = (h ^ (h >> 13)) * 1274126177
    return ((h >> 7) & 1023).astype(np.float32) / 511.5 - 1.0


class ReferenceRenderer(Renderer):
    """The same camera geometry (Renderer's __init__), drawn with the old whole-array passes."""

    def render(self, road: Road, x_m: float, y_m: float, yaw_rad: float, index: int, t_s: float,
               scenery: Scenery) -> np.ndarray:
        cam = self.camera
        image = np.empty((len(self.ground_rows), len(self.dx), 3), np.float32)
        image[~self.ground_rows] = self._sky(yaw_rad, scenery)
        image[self.ground_rows] = self._ground(road, x_m, y_m, yaw_rad, index, scenery)
        ss = cam.supersample
        image = sum(image[i::ss, j::ss] for i in range(ss) for j in range(ss))
        return np.clip(image * (255 * scenery.light(t_s) / ss**2), 0, 255).astype(np.uint8)

    def _ground(self, road: Road, x_m: float, y_m: float, yaw_rad: float, index: int,
                scenery: Scenery) -> np.ndarray:
        forward, right, s, heading = self._centreline_in_car_frame(road, x_m, y_m, yaw_rad, index)
        z = self.row_forward_m
        row_s, row_right, row_heading = (np.interp(z, forward, v).astype(np.float32)[:, None]
                                         for v in (s, right, heading))
        offset_right = self.pixel_right_m - row_right
        d = -offset_right * np.cos(row_heading)  # lateral offset from the centre line, positive = left
        s_px = row_s - offset_right * np.sin(row_heading)

        ad = np.abs(d)
        material = np.where(ad < LANE_WIDTH_M, ASPHALT, np.where(ad < LANE_WIDTH_M + 0.8, SHOULDER, GRASS))
        edge = np.abs(ad - (LANE_WIDTH_M - 0.2)) < LINE_WIDTH_M / 2
        dash = (ad < LINE_WIDTH_M / 2) & (np.mod(s_px, DASH_PERIOD_M) < DASH_M)
        material[edge | dash] = PAINT
        shade = 1 + TEXTURE_AMPLITUDE[material] * _texture(s_px, d)
        colour = scenery.palette()[material] * shade[..., None]
        fog = (np.clip(z / self.camera.max_range_m, 0, 1) ** 1.5)[:, None, None]
        colour = colour * (1 - fog) + scenery.horizon.astype(np.float32) * fog
        colour[z > min(forward[-1], self.camera.max_range_m)] = scenery.horizon
        return colour

    def _sky(self, yaw_rad: float, scenery: Scenery) -> np.ndarray:
        azimuth = yaw_rad - np.arctan(self.dx)  # left of the heading is a larger azimuth
        amp, freq, phase = scenery.hill_waves.T
        ridge = 0.01 + np.sum(amp[:, None] * (1 + np.sin(freq[:, None] * azimuth + phase[:, None])), axis=0)
        elevation = self.sky_elevation[:, None]
        blend = np.clip(elevation / 0.25, 0, 1)[..., None]
        sky = scenery.horizon * (1 - blend) + scenery.sky * blend
        return np.where((elevation < ridge)[..., None], scenery.hills, sky)
