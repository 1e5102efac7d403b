"""Pictures for people: what the agent saw, where the car is, and both together with a line of text.

Three views, all RGB uint8: the **camera view** (the agent's frame scaled up nearest-neighbour,
so every pixel it saw stays one flat block), the **map view** (``MapView``: top-down, heading-up
around the car, here with the driven path drawn on it) and the **lap view** (the camera view
beside the map view, a text line beneath). The env renders them on request
(``EnvConfig(render_view=...)``) and a run's ``lap.mp4`` is made of lap views, one per step.
Text and the path are drawn with Pillow (``ImageDraw``), imported when a lap view is first made,
so the env imports no imaging library until it draws one.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from simeval.sim.camera import CameraConfig
from simeval.sim.mapview import MapView
from simeval.sim.vehicle import VehicleConfig
from simeval.track.lookup import RoadGrid

VIEWS = ("map", "camera", "combined")
"""What the env's ``render()`` shows: the map around the car, the camera view, or the lap view."""
CAMERA_VIEW_MIN_HEIGHT_PX = 256
"""The camera view is the frame scaled by the smallest whole factor that reaches this height
(the 66x200 frame: x4, 264x800; the 640x480 sensor image: x1)."""
MAP_SPAN_M = 40.0
"""Side of the ground square the map view covers (m)."""
TEXT_BAR_PX = 24
FONT_SIZE_PX = 15
PATH_COLOUR = (255, 200, 40)
PATH_WIDTH_PX = 2
BAR_COLOUR = (20, 20, 24)
TEXT_COLOUR = (240, 240, 240)

Pose = tuple[float, float, float]


def camera_scale(camera: CameraConfig) -> int:
    """The whole factor the camera view scales ``camera``'s frames by."""
    return max(1, math.ceil(CAMERA_VIEW_MIN_HEIGHT_PX / camera.height_px))


def camera_view(frame: NDArray[np.uint8], scale: int) -> NDArray[np.uint8]:
    """``frame`` scaled up ``scale`` times, nearest-neighbour (each pixel a ``scale``-square block)."""
    return np.repeat(np.repeat(frame, scale, axis=1), scale, axis=0)  # columns first: the cheaper order


def status_line(t_s: float, v_mps: float, w_radps: float, d_m: float, inference_s: float | None = None) -> str:
    """The lap view's text: simulated time, speed, yaw rate, lateral deviation, and the agent's
    inference time when there is one (the env alone has no agent; pure pursuit calls no model)."""
    text = f"t {t_s:7.2f} s   v {v_mps:5.2f} m/s   w {w_radps:+5.2f} rad/s   d {d_m:+6.3f} m"
    return text if inference_s is None or math.isnan(inference_s) else f"{text}   inference {inference_s * 1e3:6.3f} ms"


def text_font():
    """A monospaced font, so that the text line's numbers stand still from frame to frame:
    matplotlib's DejaVu Sans Mono (a dependency of simeval), found without importing matplotlib;
    Pillow's own font if it is not there."""
    from PIL import ImageFont

    spec = importlib.util.find_spec("matplotlib")
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(folder) / "mpl-data" / "fonts" / "ttf" / "DejaVuSansMono.ttf"
        if path.is_file():
            return ImageFont.truetype(str(path), FONT_SIZE_PX)
    return ImageFont.load_default(size=FONT_SIZE_PX)


class LapView:
    """The camera view beside the map view (as tall as the camera view), a text line beneath.

    Both sides of the picture are even (H.264's 4:2:0 colour needs it): a pixel of bar is added
    where they would not be.
    """

    def __init__(self, grid: RoadGrid, vehicle: VehicleConfig, camera: CameraConfig, span_m: float = MAP_SPAN_M):
        self.scale = camera_scale(camera)
        self._camera_hw = (camera.height_px * self.scale, camera.width_px * self.scale)
        side = self._camera_hw[0]
        self.map = MapView(grid, vehicle, size_px=side, span_m=span_m)
        height, width = side + TEXT_BAR_PX, self._camera_hw[1] + side
        self.shape = (height + height % 2, width + width % 2, 3)
        self._font = text_font()

    def render(self, frame: NDArray[np.uint8] | None, pose: Pose, path_xy: NDArray[np.float64] | Sequence, text: str) -> NDArray[np.uint8]:
        """The picture for the car at ``pose`` (x m, y m, yaw rad) that saw ``frame`` (None: before
        the first frame, a black camera view), having driven ``path_xy`` ((N, 2) m), with ``text``."""
        picture = np.empty(self.shape, dtype=np.uint8)
        height, width = self._camera_hw
        rows = picture[:height, :width].reshape(height // self.scale, self.scale, width, 3)
        rows[:] = 0 if frame is None else np.repeat(frame, self.scale, axis=1)[:, None]  # nearest-neighbour
        picture[:height, width:width + height] = self.map_with_path(pose, path_xy)
        picture[:height, width + height:] = BAR_COLOUR
        picture[height:] = self._text_bar(text)
        return picture

    def _text_bar(self, text: str) -> NDArray[np.uint8]:
        from PIL import Image, ImageDraw

        bar = Image.new("RGB", (self.shape[1], self.shape[0] - self._camera_hw[0]), BAR_COLOUR)
        ImageDraw.Draw(bar).text((6, (TEXT_BAR_PX - FONT_SIZE_PX) // 2 - 1), text, fill=TEXT_COLOUR, font=self._font)
        return np.asarray(bar)

    def map_with_path(self, pose: Pose, path_xy: NDArray[np.float64] | Sequence) -> NDArray[np.uint8]:
        """The map view around ``pose`` with the driven path over the road and under the car."""
        picture = self.map.ground(*pose)
        pieces = in_view(self.map.to_pixels(np.asarray(path_xy, dtype=np.float64).reshape(-1, 2), pose), self.map.size_px)
        if pieces:
            from PIL import Image, ImageDraw

            image = Image.fromarray(picture)
            draw = ImageDraw.Draw(image)
            for piece in pieces:
                draw.line([tuple(p) for p in piece.tolist()], fill=PATH_COLOUR, width=PATH_WIDTH_PX, joint="curve")
            picture = np.array(image)
        self.map.draw_car(picture)
        return picture


def in_view(points: NDArray[np.float64], size_px: int, margin_px: float = 4.0) -> list[NDArray[np.float64]]:
    """The pieces of the polyline ``points`` ((N, 2) pixel coordinates) that cross a ``size_px``
    square: consecutive runs of segments with an end inside it (a lap's path is thousands of
    points, of which a few dozen are in view)."""
    if len(points) < 2:
        return []
    inside = np.all((points >= -margin_px) & (points <= size_px + margin_px), axis=1)
    shown = np.concatenate([[False], inside[:-1] | inside[1:], [False]])
    edges = np.flatnonzero(np.diff(shown.astype(np.int8)))
    return [points[start:stop + 1] for start, stop in zip(edges[::2], edges[1::2], strict=True)]


class EnvView:
    """The env's ``render()`` picture, as ``EnvConfig.render_view`` names it."""

    def __init__(self, view: str, grid: RoadGrid, vehicle: VehicleConfig, camera: CameraConfig):
        self.view = view
        self._lap = LapView(grid, vehicle, camera) if view == "combined" else None
        self._map = MapView(grid, vehicle) if view == "map" else None
        self._scale = camera_scale(camera)
        self._camera_shape = camera.shape

    def render(self, frame: NDArray[np.uint8] | None, pose: Pose, path_txy: Sequence, text: str) -> NDArray[np.uint8]:
        """The view of the car at ``pose`` that saw ``frame`` (None before the first), having driven
        ``path_txy`` ((t s, x m, y m) points: the simulator's path), with ``text``."""
        if self._map is not None:
            return self._map.render(*pose)
        if self._lap is not None:
            return self._lap.render(frame, pose, np.asarray(path_txy, dtype=np.float64)[:, 1:], text)
        if frame is None:
            frame = np.zeros(self._camera_shape, dtype=np.uint8)
        return camera_view(frame, self._scale)
