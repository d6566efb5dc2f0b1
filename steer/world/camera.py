"""A front camera over flat ground, rendered row by row as old racing games did, but with true geometry.

A pinhole camera at a mounted height and pitch sees the ground at one forward distance per image row,
so each row needs one lookup of the road centreline (its lateral position, arc length and heading in the
car's frame) and each pixel only a lateral offset from it. Markings, asphalt and grass texture are
anchored to road coordinates, so they move across the image exactly as fast as the car drives: that is
what lets a model that sees several frames know the speed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from steer.world.road import DS_M, Road

LANE_WIDTH_M = 3.6
LINE_WIDTH_M = 0.15
DASH_M, DASH_PERIOD_M = 3.0, 9.0
# Texture cells are long along the road, so their edges sweep through the image by the distance
# driven between frames (as the dashes do) instead of flickering like fine noise.
TEXTURE_CELL_ALONG_M, TEXTURE_CELL_ACROSS_M = 2.0, 0.5
ASPHALT, SHOULDER, GRASS, PAINT = range(4)  # ground materials
TEXTURE_AMPLITUDE = np.array([0.12, 0.15, 0.25, 0.0], np.float32)


@dataclass
class Camera:
    height_px: int = 66
    width_px: int = 200
    fov_deg: float = 70.0  # horizontal
    mount_height_m: float = 1.4
    pitch_deg: float = 8.0  # downwards
    max_range_m: float = 90.0
    supersample: int = 2  # rendered at this factor and averaged down, so edges move smoothly


@dataclass
class Scenery:
    """The look of one drive: colours (RGB 0..1), distant hills and the light over time."""
    asphalt: np.ndarray
    grass: np.ndarray
    shoulder: np.ndarray
    sky: np.ndarray
    horizon: np.ndarray
    hills: np.ndarray
    hill_waves: np.ndarray  # (k, 3): amplitude (rad), frequency, phase of the ridge line
    light_base: float
    light_swing: float
    light_period_s: float
    light_phase: float

    @staticmethod
    def random(rng: np.random.Generator) -> "Scenery":
        def jitter(rgb, amount=0.08):
            return np.clip(np.array(rgb) + rng.uniform(-amount, amount, 3), 0, 1)

        grass = [(0.25, 0.45, 0.18), (0.55, 0.5, 0.25), (0.6, 0.45, 0.3), (0.85, 0.87, 0.9)][rng.integers(4)]
        grey = rng.uniform(0.25, 0.5)
        waves = np.stack([rng.uniform(0.004, 0.02, 4), rng.integers(1, 9, 4), rng.uniform(0, 2 * np.pi, 4)], 1)
        return Scenery(asphalt=jitter((grey, grey, grey), 0.03), grass=jitter(grass), shoulder=jitter((0.5, 0.45, 0.4)),
                       sky=jitter((0.35, 0.55, 0.85), 0.1), horizon=jitter((0.75, 0.8, 0.88), 0.06),
                       hills=jitter((0.3, 0.38, 0.35), 0.1), hill_waves=waves,
                       light_base=rng.uniform(0.65, 1.15), light_swing=rng.uniform(0.0, 0.2),
                       light_period_s=rng.uniform(8, 30), light_phase=rng.uniform(0, 2 * np.pi))

    def palette(self) -> np.ndarray:
        """Colours of the ground materials, indexed by ASPHALT, SHOULDER, GRASS, PAINT."""
        return np.stack([self.asphalt, self.shoulder, self.grass, np.full(3, 0.92)]).astype(np.float32)

    def light(self, t_s: float) -> float:
        return self.light_base + self.light_swing * np.sin(2 * np.pi * t_s / self.light_period_s + self.light_phase)


def _texture(along_m: np.ndarray, across_m: np.ndarray) -> np.ndarray:
    """Deterministic value noise in -1..1 on a grid of cells keyed on road coordinates."""
    i = np.floor(along_m / TEXTURE_CELL_ALONG_M).astype(np.int64)
    j = np.floor(across_m / TEXTURE_CELL_ACROSS_M).astype(np.int64)
    h = (i * 73856093) ^ (j * 19349663)
    h = (h ^ (h >> 13)) * 1274126177
    return ((h >> 7) & 1023).astype(np.float32) / 511.5 - 1.0


class Renderer:
    def __init__(self, camera: Camera):
        self.camera = camera
        ss = camera.supersample
        h, w = camera.height_px * ss, camera.width_px * ss
        self.focal_px = (w / 2) / np.tan(np.radians(camera.fov_deg) / 2)
        pitch = np.radians(camera.pitch_deg)
        dy = (np.arange(h) + 0.5 - h / 2) / self.focal_px  # ray slope below the optical axis
        self.dx = ((np.arange(w) + 0.5 - w / 2) / self.focal_px).astype(np.float32)  # slope to the right
        down = np.sin(pitch) + np.cos(pitch) * dy
        self.ground_rows = down > 1e-3
        self.row_down = down[self.ground_rows].astype(np.float32)
        self.row_forward_m = (camera.mount_height_m * (np.cos(pitch) - np.sin(pitch) * dy[self.ground_rows])
                              / self.row_down).astype(np.float32)
        self.pixel_right_m = camera.mount_height_m * self.dx[None, :] / self.row_down[:, None]
        self.sky_elevation = -(pitch + np.arctan(dy[~self.ground_rows]))  # elevation of each sky row

    def render(self, road: Road, x_m: float, y_m: float, yaw_rad: float, index: int, t_s: float,
               scenery: Scenery) -> np.ndarray:
        cam = self.camera
        image = np.empty((len(self.ground_rows), len(self.dx), 3), np.float32)
        image[~self.ground_rows] = self._sky(yaw_rad, scenery)
        image[self.ground_rows] = self._ground(road, x_m, y_m, yaw_rad, index, scenery)
        ss = cam.supersample
        image = sum(image[i::ss, j::ss] for i in range(ss) for j in range(ss))
        return np.clip(image * (255 * scenery.light(t_s) / ss**2), 0, 255).astype(np.uint8)

    def _centreline_in_car_frame(self, road: Road, x_m: float, y_m: float, yaw_rad: float, index: int):
        """Forward distance, lateral position (right), arc length and relative heading of the road ahead."""
        j = slice(max(index - 20, 0), min(index + int((self.camera.max_range_m + 40) / DS_M), len(road.s_m)))
        dx, dy = road.x_m[j] - x_m, road.y_m[j] - y_m
        forward = dx * np.cos(yaw_rad) + dy * np.sin(yaw_rad)
        right = dx * np.sin(yaw_rad) - dy * np.cos(yaw_rad)
        # Interpolation by forward distance needs it increasing: stop where the road bends back.
        turning_back = np.flatnonzero(np.diff(forward) <= 0)
        end = turning_back[0] + 1 if len(turning_back) else len(forward)
        return forward[:end], right[:end], road.s_m[j][:end], (road.heading_rad[j] - yaw_rad)[:end]

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
