"""A front camera over flat ground, rendered row by row as old racing games did, but with true geometry.

A pinhole camera at a mounted height and pitch sees the ground at one forward distance per image row,
so each row needs one lookup of the road centreline (its lateral position, arc length and heading in the
car's frame) and each pixel only a lateral offset from it. Markings, asphalt and grass texture are
anchored to road coordinates, so they move across the image exactly as fast as the car drives: that is
what lets a model that sees several frames know the speed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numba
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
# The per-pixel pass is compiled (numba) and computes in float32 exactly as the whole-array numpy
# renderer before it did (steer.world.camera_reference): its thresholds are float32 too, so a pixel
# on a marking's edge falls on the same side.
_F = np.float32
_LANE, _SHOULDER_END = _F(LANE_WIDTH_M), _F(LANE_WIDTH_M + 0.8)
_EDGE, _HALF_LINE = _F(LANE_WIDTH_M - 0.2), _F(LINE_WIDTH_M / 2)
_DASH, _DASH_PERIOD = _F(DASH_M), _F(DASH_PERIOD_M)
_ALONG, _ACROSS = _F(TEXTURE_CELL_ALONG_M), _F(TEXTURE_CELL_ACROSS_M)


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


@numba.njit(cache=True)
def _material(d: np.float32, s: np.float32) -> int:
    """Ground material at lateral offset d (positive = left) and arc length s from the road centre."""
    ad = abs(d)
    if abs(ad - _EDGE) < _HALF_LINE or (ad < _HALF_LINE and _positive_mod(s, _DASH_PERIOD) < _DASH):
        return PAINT
    return ASPHALT if ad < _LANE else SHOULDER if ad < _SHOULDER_END else GRASS


@numba.njit(cache=True)
def _positive_mod(a: np.float32, b: np.float32) -> np.float32:
    """numpy's float remainder (fmod, then moved to b's sign), rounded to float32 as np.mod rounds it."""
    m = _F(np.fmod(a, b))
    return m + b if m < 0 else m


@numba.njit(cache=True)
def _texture(along_m: np.float32, across_m: np.float32) -> np.float32:
    """Deterministic value noise in -1..1 on a grid of cells keyed on road coordinates."""
    i, j = np.int64(np.floor(along_m / _ALONG)), np.int64(np.floor(across_m / _ACROSS))
    h = (i * 73856093) ^ (j * 19349663)
    h = (h ^ (h >> 13)) * 1274126177
    return _F((h >> 7) & 1023) / _F(511.5) - _F(1.0)


@numba.njit(cache=True)
def _ground_row(total, ss, g, pixel_right_m, rows, palette, horizon):
    """Adds the colours of supersampled ground row g (among the ground rows) into total, ss columns a pixel."""
    s_row, right_row, cos_row, sin_row, keep, fog = rows[:, g]
    for c in range(pixel_right_m.shape[1]):
        offset_right = pixel_right_m[g, c] - right_row
        d = -offset_right * cos_row
        s = s_row - offset_right * sin_row
        material = _material(d, s)
        shade = _F(1) + TEXTURE_AMPLITUDE[material] * _texture(s, d)
        for k in range(3):
            total[c // ss, k] += palette[material, k] * shade * keep + horizon[k] * fog


@numba.njit(cache=True)
def _sky_row(total, ss, elevation, ridge, sky, hills):
    """Adds one supersampled sky row's colours into total: the hills below their ridge line, else the sky."""
    for c in range(len(ridge)):
        colour = hills if elevation < ridge[c] else sky
        for k in range(3):
            total[c // ss, k] += colour[k]


@numba.njit(cache=True)
def _draw(image, scale, ss, sky_elevation, ridge, sky_rows, hills, pixel_right_m, rows, beyond, palette, horizon):
    """Each output pixel the mean of its ss x ss supersampled pixels (summed row by row, in numpy's order),
    times `scale`, clipped into uint8."""
    n_sky = len(sky_elevation)
    total = np.empty((image.shape[1], 3), np.float32)
    for y in range(image.shape[0]):
        total[:] = 0
        for r in range(y * ss, y * ss + ss):
            if r < n_sky:
                _sky_row(total, ss, sky_elevation[r], ridge, sky_rows[r], hills)
            elif beyond[r - n_sky]:
                _sky_row(total, ss, 0.0, ridge, horizon, horizon)  # haze: one colour either side of the ridge
            else:
                _ground_row(total, ss, r - n_sky, pixel_right_m, rows, palette, horizon)
        for x in range(image.shape[1]):
            for k in range(3):
                image[y, x, k] = np.uint8(min(max(np.float64(total[x, k]) * scale, 0.0), 255.0))


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
        self.ground_rows = down > 1e-3  # False then True: `down` grows down the image, so the sky is on top
        self.row_down = down[self.ground_rows].astype(np.float32)
        self.row_forward_m = (camera.mount_height_m * (np.cos(pitch) - np.sin(pitch) * dy[self.ground_rows])
                              / self.row_down).astype(np.float32)
        self.pixel_right_m = camera.mount_height_m * self.dx[None, :] / self.row_down[:, None]
        self.sky_elevation = -(pitch + np.arctan(dy[~self.ground_rows]))  # elevation of each sky row
        self.sky_blend = np.clip(self.sky_elevation / 0.25, 0, 1)[:, None]  # horizon colour to sky colour
        self.column_azimuth = np.arctan(self.dx)  # to the right of the heading
        self.fog = np.clip(self.row_forward_m / camera.max_range_m, 0, 1) ** 1.5

    def render(self, road: Road, x_m: float, y_m: float, yaw_rad: float, index: int, t_s: float,
               scenery: Scenery) -> np.ndarray:
        """The frame (height x width x 3, uint8) from a car at (x_m, y_m) heading yaw_rad, nearest `index`."""
        cam = self.camera
        forward, right, s, heading = self._centreline_in_car_frame(road, x_m, y_m, yaw_rad, index)
        z = self.row_forward_m
        row_s, row_right, row_heading = (np.interp(z, forward, v).astype(np.float32) for v in (s, right, heading))
        rows = np.stack([row_s, row_right, np.cos(row_heading), np.sin(row_heading), 1 - self.fog, self.fog])
        beyond = z > min(forward[-1], cam.max_range_m)  # past the end of the road in view: haze
        sky_rows = scenery.horizon * (1 - self.sky_blend) + scenery.sky * self.sky_blend
        image = np.empty((cam.height_px, cam.width_px, 3), np.uint8)
        _draw(image, float(255 * scenery.light(t_s) / cam.supersample**2), cam.supersample, self.sky_elevation,
              self._ridge(yaw_rad, scenery), sky_rows.astype(np.float32), scenery.hills.astype(np.float32),
              self.pixel_right_m, rows, beyond, scenery.palette(), scenery.horizon.astype(np.float32))
        return image

    def _ridge(self, yaw_rad: float, scenery: Scenery) -> np.ndarray:
        """Elevation (rad) of the hills' ridge line in each supersampled column."""
        # left of the heading is a larger azimuth; in float64 (a float yaw beside float32 columns is float32)
        azimuth = np.float64(yaw_rad) - self.column_azimuth
        amp, freq, phase = scenery.hill_waves.T
        ridge = 0.01 + np.sum(amp[:, None] * (1 + np.sin(freq[:, None] * azimuth + phase[:, None])), axis=0)
        return ridge.astype(np.float64)

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
