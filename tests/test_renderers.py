"""The two renderers draw the same world: the raster renderer is held against pybullet's.

Real circuits, real renderers. The red line is what a line-following network looks at, so the
check that matters is that both renderers put it on the same pixels; the colours are checked on
whole-pixel surfaces, where neither renderer's edge handling plays a part.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

pytest.importorskip("pybullet")

from simeval.sim import pybullet_renderer
from simeval.sim.camera import PALETTE, CameraConfig, red_line_mask
from simeval.sim.pybullet_renderer import PybulletRenderer, RendererClosedError, mesh_lists
from simeval.sim.renderer import Renderer, make_renderer
from simeval.track.circuit import Circuit

TEST_CIRCUITS = ("simple", "montreal", "montmelo")
POSES_PER_CIRCUIT = 8
BEND_POSES_PER_CIRCUIT = 3
"""Of each circuit's poses, how many are placed in its tightest bends (the rest anywhere)."""
MIN_IOU = 0.9
"""Per pose. The two disagree only along the line's edges, most where it is thinner than a pixel:
TinyRenderer point-samples (a pixel is line if its centre is), the raster renderer box-filters
(line if at least half covered), so a far line is dashes in one and nothing in the other."""
MIN_POOLED_IOU = 0.95
"""Over all poses: a systematic camera mismatch shows here (half a pixel of shift gives ~0.87)."""
MIN_LINE_PIXELS = 50
"""A pose whose line covers fewer pixels (far off, thinner than a pixel) shows no line to compare."""
MIN_VISIBLE_FRACTION = 0.8
"""Most poses must show the line, or the agreement test proves nothing."""


@pytest.fixture(scope="module")
def renderers() -> Iterator[dict[str, tuple[Circuit, Renderer, Renderer]]]:
    """Per test circuit: the circuit, its raster renderer and its pybullet renderer."""
    config = CameraConfig()
    built = {}
    for name in TEST_CIRCUITS:
        circuit = Circuit.from_name(name)
        built[name] = (circuit, make_renderer("raster", circuit, config), make_renderer("pybullet", circuit, config))
    yield built
    for _, raster, bullet in built.values():
        raster.close()
        bullet.close()


def random_poses(circuit: Circuit, rng: np.random.Generator) -> list[tuple[float, float, float]]:
    """Poses near the line: lateral offset within +-0.8 m, heading error within +-0.3 rad.

    Some arc lengths are drawn from the tightest bends, where a camera mismatch shows most.
    """
    bends = np.flatnonzero(np.abs(circuit.curvature) >= np.quantile(np.abs(circuit.curvature), 0.98))
    s = np.concatenate([
        circuit.s[rng.choice(bends, BEND_POSES_PER_CIRCUIT, replace=False)],
        rng.uniform(0.0, circuit.length_m, POSES_PER_CIRCUIT - BEND_POSES_PER_CIRCUIT),
    ])
    d = rng.uniform(-0.8, 0.8, len(s))
    yaw = circuit.heading_at(s) + rng.uniform(-0.3, 0.3, len(s))
    xy = circuit.position(s, d)
    return [(float(x), float(y), float(h)) for (x, y), h in zip(xy, yaw, strict=True)]


def overlap(a: np.ndarray, b: np.ndarray) -> tuple[int, int]:
    """Intersection and union pixel counts of two masks."""
    return int(np.count_nonzero(a & b)), int(np.count_nonzero(a | b))


@pytest.mark.parametrize("name", TEST_CIRCUITS)
def test_frames_are_contiguous_uint8_of_the_camera_shape(renderers, name: str) -> None:
    circuit, raster, bullet = renderers[name]
    for renderer in (raster, bullet):
        frame = renderer.render(*circuit.spawn_pose)
        assert frame.shape == CameraConfig().shape == (66, 200, 3)
        assert frame.dtype == np.uint8
        assert frame.flags.c_contiguous


def test_red_line_masks_agree(renderers) -> None:
    rng = np.random.default_rng(20261126)
    rows: list[tuple[str, tuple[float, float, float], int, int]] = []
    for name in TEST_CIRCUITS:
        circuit, raster, bullet = renderers[name]
        for pose in random_poses(circuit, rng):
            masks = red_line_mask(raster.render(*pose)), red_line_mask(bullet.render(*pose))
            rows.append((name, pose, *overlap(*masks)))
    report = "\n".join(
        f"  {name:9} x={x:9.3f} y={y:9.3f} yaw={yaw:+.3f}  line px={union:4d}  IoU={inter / max(union, 1):.3f}"
        for name, (x, y, yaw), inter, union in rows
    )
    visible = [(inter, union) for *_, inter, union in rows if union >= MIN_LINE_PIXELS]
    assert len(rows) >= 20
    assert len(visible) >= MIN_VISIBLE_FRACTION * len(rows), f"too few poses show the line:\n{report}"
    assert min(inter / union for inter, union in visible) >= MIN_IOU, f"red-line IoU below {MIN_IOU}:\n{report}"
    pooled = sum(i for i, _ in visible) / sum(u for _, u in visible)
    assert pooled >= MIN_POOLED_IOU, f"pooled red-line IoU {pooled:.3f} below {MIN_POOLED_IOU}:\n{report}"


@pytest.mark.parametrize("name", TEST_CIRCUITS)
def test_road_and_line_have_the_palette_colours(renderers, name: str) -> None:
    """On the line at spawn: the bottom centre pixel is line, one 0.75 m to the left is asphalt."""
    circuit, raster, bullet = renderers[name]
    config = CameraConfig()
    rays = config.pixel_rays()[-1]  # bottom row, car frame
    lateral = rays[:, 1] * (-config.height_m / rays[:, 2])  # where each ray meets the ground
    road_col = int(np.argmin(np.abs(lateral - 0.75)))
    x, y = circuit.position(0.0)
    yaw = float(circuit.heading_at(0.0))
    for renderer in (raster, bullet):
        frame = renderer.render(float(x), float(y), yaw)
        assert tuple(frame[-1, road_col]) == PALETTE.asphalt, type(renderer).__name__
        assert tuple(frame[-1, config.width_px // 2]) == PALETTE.line, type(renderer).__name__


def test_hiding_chunks_outside_the_view_changes_no_pixel(renderers, monkeypatch) -> None:
    """The frustum culling is an optimisation only: one chunk that is always drawn gives the same frames."""
    circuit, _, culled = renderers["montmelo"]
    monkeypatch.setattr(pybullet_renderer, "CHUNK_M", float("inf"))
    whole = PybulletRenderer(circuit, CameraConfig())
    assert len(whole._bodies) == 1 < len(culled._bodies)
    try:
        for pose in random_poses(circuit, np.random.default_rng(7)):
            np.testing.assert_array_equal(culled.render(*pose), whole.render(*pose))
    finally:
        whole.close()


def test_close_twice_is_safe() -> None:
    circuit = Circuit.from_name("simple")
    renderer = PybulletRenderer(circuit, CameraConfig())
    renderer.render(*circuit.spawn_pose)
    renderer.close()
    renderer.close()
    with pytest.raises(RendererClosedError, match="renderer is closed; make a new one"):
        renderer.render(*circuit.spawn_pose)
    raster = make_renderer("raster", circuit, CameraConfig())
    raster.close()
    raster.close()


def test_the_same_mesh_is_handed_to_pybullet_as_the_same_lists() -> None:
    """pybullet keeps every vertex list it is given alive for good (a reference leak in its
    createVisualShape), so a second renderer of the same world must give it the same lists, not
    copies: that is what keeps make/close cycles from growing memory."""
    circuit = Circuit.from_name("simple")
    vertices = circuit.xy[:40]
    mesh = pybullet_renderer.strip_mesh(vertices, vertices + 0.1)
    first, again = mesh_lists(mesh), mesh_lists((mesh[0].copy(), mesh[1].copy()))
    assert first["vertices"] is again["vertices"] and first["indices"] is again["indices"]
    assert first["vertices"] == mesh[0].tolist() and first["indices"] == mesh[1].tolist()
    other = mesh_lists(pybullet_renderer.strip_mesh(vertices, vertices + 0.2))
    assert other["vertices"] is not first["vertices"]
