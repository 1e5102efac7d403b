"""The car's camera: where it sits, what it sees, and the colours of the world it looks at.

The frame is what PilotNet was trained on: the bottom half (rows 240:480) of a 640x480 pinhole
image with a 90 deg horizontal field of view, at 200x66. Renderers draw that crop directly, with
its own intrinsics (non-square pixels: 640->200 across, 240->66 down), never a full image that is
then resized.

Axes: the car frame has X forward, Y left, Z up, origin at the car's reference point on the
ground. The camera frame has x right, y down, z forward (OpenCV convention).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from simeval.sim.checks import check_number

MAX_SIDE_PX = 4096
"""Largest frame or sensor side: a typo of a few more digits would otherwise ask for gigabytes."""


@dataclass(frozen=True)
class CameraConfig:
    """Mounting and optics of the car's camera."""

    width_px: int = 200
    """Frame width after the crop/resize of the published pipeline."""
    height_px: int = 66
    full_width_px: int = 640
    """The sensor image that the published crop was taken from."""
    full_height_px: int = 480
    crop_top_px: int = 240
    """First sensor row kept (rows crop_top_px:full_height_px become the frame)."""
    hfov_deg: float = 90.0
    height_m: float = 0.45
    """Lens height above the ground; below the 0.5 m walls, as on the Gazebo F1 car."""
    pitch_rad: float = 0.0
    """Downward tilt of the optical axis; 0 puts the horizon on the frame's top edge."""
    forward_m: float = 0.35
    """Lens position ahead of the car's reference point."""

    def __post_init__(self) -> None:
        for key in ("width_px", "height_px", "full_width_px", "full_height_px"):
            check_number(f"camera {key}", getattr(self, key), at_least=1, at_most=MAX_SIDE_PX, integer=True)
        check_number("camera crop_top_px", self.crop_top_px, at_least=0, below=self.full_height_px, integer=True)
        check_number("camera hfov_deg", self.hfov_deg, at_least=10.0, at_most=170.0)
        check_number("camera height_m", self.height_m, above=0.0)
        check_number("camera pitch_rad", self.pitch_rad, above=-math.pi / 2, below=math.pi / 2)
        check_number("camera forward_m", self.forward_m)

    @classmethod
    def sensor(cls) -> CameraConfig:
        """The same camera's whole 640x480 image (the published crop is rows 240:480 of it)."""
        default = cls()
        return cls(width_px=default.full_width_px, height_px=default.full_height_px, crop_top_px=0)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.height_px, self.width_px, 3)

    def intrinsics(self) -> tuple[float, float, float, float]:
        """(fx, fy, cx, cy) in frame pixels, for the cropped and resized frame."""
        focal_full = (self.full_width_px / 2) / math.tan(math.radians(self.hfov_deg) / 2)
        sx = self.width_px / self.full_width_px
        sy = self.height_px / (self.full_height_px - self.crop_top_px)
        return focal_full * sx, focal_full * sy, self.width_px / 2, (self.full_height_px / 2 - self.crop_top_px) * sy

    def axes_in_car(self) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """The camera's (right, down, forward) unit vectors in the car frame."""
        c, s = math.cos(self.pitch_rad), math.sin(self.pitch_rad)
        forward = np.array([c, 0.0, -s])
        down = np.array([-s, 0.0, -c])
        right = np.array([0.0, -1.0, 0.0])
        return right, down, forward

    def pixel_rays(self) -> NDArray[np.float64]:
        """Direction (car frame, not normalised) of the ray through each pixel centre, (H, W, 3)."""
        fx, fy, cx, cy = self.intrinsics()
        u = (np.arange(self.width_px) + 0.5 - cx) / fx
        v = (np.arange(self.height_px) + 0.5 - cy) / fy
        right, down, forward = self.axes_in_car()
        return forward + u[None, :, None] * right + v[:, None, None] * down

    def lens_in_car(self) -> NDArray[np.float64]:
        return np.array([self.forward_m, 0.0, self.height_m])


@dataclass(frozen=True)
class Palette:
    """Colours of the world, shared by every renderer so their frames agree (RGB uint8)."""

    grass: tuple[int, int, int] = (62, 122, 52)
    asphalt: tuple[int, int, int] = (96, 96, 100)
    line: tuple[int, int, int] = (220, 30, 30)
    wall: tuple[int, int, int] = (214, 214, 206)
    sky: tuple[int, int, int] = (150, 190, 235)


PALETTE = Palette()


def red_line_mask(frame: NDArray[np.uint8]) -> NDArray[np.bool_]:
    """Pixels that are mostly red line: the same test for every renderer and for the expert."""
    r, g, b = (frame[..., k].astype(np.int16) for k in range(3))
    redness = r - np.maximum(g, b)
    # Half the line's own redness: a pixel at least half covered by line over asphalt passes.
    return redness > (PALETTE.line[0] - max(PALETTE.line[1:])) // 2
