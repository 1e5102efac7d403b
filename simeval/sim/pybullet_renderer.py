"""The reference renderer: pybullet's TinyRenderer draws the same world as ``simeval.sim.raster``.

Why a second renderer: the raster renderer is fast because it is specialised (flat road, walls
taller than the lens, analytic anti-aliasing), and every shortcut is a place for a bug. This one
shares none of its maths: it builds the circuit as ordinary triangle meshes (asphalt, red line,
walls) and lets a general rasteriser with a z-buffer draw them through the same pinhole, so a
test can hold the two frames against each other. It also draws what the raster renderer refuses:
a lens above the walls, a camera that sees the sky.

TinyRenderer runs on the CPU in any pybullet install (DIRECT mode: no display, no GPU). It does
not anti-alias, so thin far lines break up where the raster renderer fades them. The EGL plugin
renders with OpenGL on a GPU; it is loaded only when asked for (``egl=True``), because without a
GPU it fails or falls back to a slow software driver (Mesa llvmpipe: about twice TinyRenderer's
time).

Colours are flat: ambient light only, no diffuse, specular or shadow, so a TinyRenderer road pixel
has exactly the palette's asphalt colour whatever the light and the surface normal (OpenGL, which
has its own light model, comes within one level of it). The grass is not a mesh:
it is an infinite plane under the road, so every pixel that no mesh covers is grass below the
horizon and sky above it, painted after rendering.

TinyRenderer's time grows with every triangle in the world, seen or not. So the meshes keep only
the vertices that the shape needs (a straight needs two), they are cut into short chunks, and
before each frame the chunks outside the view frustum are hidden (alpha 0, which TinyRenderer
skips). Hiding is conservative: a frame is the same with or without it.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import tempfile

import numpy as np
from numpy.typing import NDArray

from simeval.errors import SimevalError
from simeval.sim.camera import PALETTE, CameraConfig
from simeval.track.circuit import Circuit

Mesh = tuple[NDArray[np.float64], NDArray[np.int32]]
"""Vertices (V, 3) and flat triangle indices (3T,), as pybullet's createVisualShape takes them."""

TOLERANCE_M = 0.001
"""How far the simplified meshes may stray from the circuit's polylines (m): under a fifth of a
pixel even at the bottom of the frame, 0.6 m ahead of the lens."""
MAX_SEGMENT_M = 10.0
CHUNK_M = 20.0
"""Arc length of road per chunk (m): the unit that is hidden when outside the view."""
NEAR_M = 0.05
FAR_M = 2000.0
TINY_SAMPLE_PX = (0.0, 1.0)
"""Where TinyRenderer samples pixel (column u, row r): at (u + 0.0, r + 1.0) from the frame's
top-left corner, not at the centre (u + 0.5, r + 0.5) like OpenGL and the raster renderer: it
tests integer viewport coordinates, and its rows run bottom-up. Measured from its depth buffer
against planes at known places (pybullet 3.2.7); the frustum is shifted by the difference."""

_HANDED_TO_PYBULLET: dict[tuple[int, bytes], dict[str, list]] = {}
"""Mesh geometry already given to pybullet as lists, by content. pybullet 3.2.7's createVisualShape
never drops the references that it takes to its ``vertices`` list and to every vertex in it
(``extractVertices`` in pybullet.c: PySequence_Fast and PySequence_GetItem without Py_DECREF), so
every list it is given stays in memory for good: 1.7 MB per renderer on 'simple', 317 MB over 200
envs. Giving it the same lists for the same mesh leaves one copy per distinct mesh, which is what
this holds; nothing more than pybullet keeps alive anyway."""


def strip_mesh(right: NDArray[np.float64], left: NDArray[np.float64]) -> Mesh:
    """Flat triangle strip on the ground between two open polylines (M, 2), facing up.

    ``right`` must lie to the right of ``left`` when walking along them: the triangles then wind
    counter-clockwise seen from above, the front face for OpenGL and for TinyRenderer, which both
    cull back faces. Nothing looks at the road from below, so one face is enough.
    """
    vertices = np.zeros((2 * len(right), 3))
    vertices[0::2, :2], vertices[1::2, :2] = right, left
    return vertices, quad_indices(len(right), double_sided=False)


def wall_mesh(line: NDArray[np.float64], height: float, double_sided: bool) -> Mesh:
    """Vertical band from the ground to ``height`` over an open polyline (M, 2).

    Single-sided, it faces the right of the walking direction. A lens below the wall tops never
    sees a wall's outside (every sight line leaves the road through an inside face first); a lens
    above them does, and needs ``double_sided``.
    """
    vertices = np.empty((2 * len(line), 3))
    vertices[0::2, :2] = vertices[1::2, :2] = line
    vertices[0::2, 2], vertices[1::2, 2] = 0.0, height
    return vertices, quad_indices(len(line), double_sided=double_sided)


def quad_indices(m: int, *, double_sided: bool) -> NDArray[np.int32]:
    """Triangles of the quads between vertex pairs (2k, 2k+1) and (2k+2, 2k+3).

    The front face winds 2k -> 2k+2 -> 2k+1: counter-clockwise seen from the side that the second
    vertex of each pair lies on (up for a strip, right of the walking direction for a wall).
    """
    k = 2 * np.arange(m - 1)[:, None]
    faces = np.hstack([k + [0, 2, 1], k + [1, 2, 3]]).reshape(-1, 3)
    if double_sided:
        faces = np.vstack([faces, faces[:, ::-1]])
    return faces.astype(np.int32).ravel()


def merge(*meshes: Mesh) -> Mesh:
    """One mesh from several, so each chunk has one body per colour."""
    offsets = np.cumsum([0] + [len(v) for v, _ in meshes[:-1]])
    return np.vstack([v for v, _ in meshes]), np.concatenate([i + o for (_, i), o in zip(meshes, offsets, strict=True)])


def write_obj(mesh: Mesh, path: str) -> str:
    """Write ``mesh`` as a Wavefront OBJ file and return its path.

    Needed for the EGL plugin: given a mesh's vertices, pybullet 3.2.7's EGL visual-shape converter
    prints 'issue extracting mesh from COLLADA/STL file' and crashes the process. Every normal
    points up, towards the light: the OpenGL renderer ignores the ambient-only light settings, and
    with one normal for all it lights a wall as brightly as the road.
    """
    vertices, indices = mesh
    lines = [f"v {x:.6f} {y:.6f} {z:.6f}\n" for x, y, z in vertices]
    lines.append("vn 0 0 1\n")
    lines += [f"f {a}//1 {b}//1 {c}//1\n" for a, b, c in indices.reshape(-1, 3) + 1]
    with open(path, "w", encoding="ascii") as f:
        f.writelines(lines)
    return path


def mesh_lists(mesh: Mesh) -> dict[str, list]:
    """``vertices`` and ``indices`` of ``mesh`` as the lists createVisualShape takes: the same list
    objects every time for the same mesh, so pybullet's reference leak cannot grow (see
    ``_HANDED_TO_PYBULLET``)."""
    vertices, indices = mesh
    digest = hashlib.sha256(vertices.tobytes())
    digest.update(indices.tobytes())
    key = (len(vertices), digest.digest())
    if key not in _HANDED_TO_PYBULLET:
        _HANDED_TO_PYBULLET[key] = {"vertices": vertices.tolist(), "indices": indices.tolist()}
    return _HANDED_TO_PYBULLET[key]


def simplify(lines: list[NDArray[np.float64]], tolerance_m: float, max_segment_m: float) -> NDArray[np.intp]:
    """Indices of the vertices to keep on parallel closed polylines (N, 2 each).

    The circuit's 0.25 m vertices are far denser than a straight needs. A greedy pass keeps a
    vertex only where dropping it would move some polyline (a wall, an edge of the line) more
    than ``tolerance_m`` off its chord.
    """
    n = len(lines[0])
    closed = np.stack([np.vstack([line, line[:1]]) for line in lines])  # (L, N + 1, 2)
    kept = [0]
    i = 0
    while i < n:
        j = i + 1
        while j < n and _chords_fit(closed[:, i : j + 2], tolerance_m, max_segment_m):
            j += 1
        kept.append(j)
        i = j
    return np.array(kept[:-1], dtype=np.intp)


def _chords_fit(run: NDArray[np.float64], tolerance_m: float, max_segment_m: float) -> bool:
    """Whether each polyline of ``run`` (L, K, 2) stays within ``tolerance_m`` of its end-to-end chord."""
    chord = run[:, -1] - run[:, 0]
    length = np.hypot(chord[:, 0], chord[:, 1])
    if length.max() > max_segment_m:
        return False
    rel = run[:, 1:-1] - run[:, :1]
    off = np.abs(rel[..., 0] * chord[:, None, 1] - rel[..., 1] * chord[:, None, 0]) / length[:, None]
    return bool(off.max() <= tolerance_m)


def chunk_runs(s_m: NDArray[np.float64], chunk_m: float) -> list[NDArray[np.intp]]:
    """Split a closed loop of vertices at arc lengths ``s_m`` (increasing) into runs of about
    ``chunk_m``; each run ends on the first vertex of the next, so the meshes join."""
    n = len(s_m)
    starts = np.flatnonzero(np.diff(np.floor(s_m / chunk_m), prepend=-1.0))
    ends = np.append(starts[1:], n)
    return [np.arange(a, b + 1) % n for a, b in zip(starts, ends, strict=True)]


class RendererClosedError(SimevalError, RuntimeError):
    """``render`` after ``close``: the pybullet connection is gone."""


class PybulletRenderer:
    """Renders the camera frame of a car on ``circuit`` with pybullet (TinyRenderer, or EGL)."""

    def __init__(self, circuit: Circuit, config: CameraConfig | None = None, *, egl: bool = False):
        import pybullet

        self._p = pybullet
        self.config = config or CameraConfig()
        self.circuit = circuit
        self._client: int | None = pybullet.connect(pybullet.DIRECT)
        self._plugin: int | None = None
        self._tiny = not egl
        self._mesh_dir: tempfile.TemporaryDirectory[str] | None = None
        self._files = 0
        if egl:
            self._load_egl()
            self._mesh_dir = tempfile.TemporaryDirectory(prefix="simeval-meshes-")
        self._bodies: list[list[int]] = []
        self._colours: list[list[list[float]]] = []
        self._shown: NDArray[np.bool_] = np.zeros(0, dtype=bool)
        self._centres, self._radii = self._build_world()
        self._projection = self._projection_matrix()
        self._lens = self.config.lens_in_car()
        self._axes = np.stack(self.config.axes_in_car())  # rows: right, down, forward (car frame)
        self._planes = self._frustum_planes()
        below = self.config.pixel_rays()[..., 2] < 0.0
        self._background = np.where(below[..., None], PALETTE.grass, PALETTE.sky).astype(np.uint8)

    # ------------------------------------------------------------------------------- the world
    def _load_egl(self) -> None:
        """Load pybullet's EGL plugin (GPU OpenGL without a display) into this client."""
        import importlib.util

        spec = importlib.util.find_spec("eglRenderer")  # shipped with pybullet wheels built with EGL
        if spec is not None and spec.origin:
            self._plugin = self._p.loadPlugin(spec.origin, "_eglRendererPlugin", physicsClientId=self._client)
        else:
            self._plugin = self._p.loadPlugin("eglRendererPlugin", physicsClientId=self._client)
        if self._plugin < 0:
            self.close()
            raise SimevalError("pybullet's EGL renderer plugin did not load: is there a GPU with EGL drivers?")

    def _add_body(self, mesh: Mesh, rgba: list[float]) -> int:
        """A visual-only body (no mass, no collision shape) of one flat colour."""
        p = self._p
        vertices, indices = mesh
        if self._mesh_dir is None:
            geometry = mesh_lists(mesh)
        else:  # the EGL plugin loads meshes only from files
            self._files += 1
            geometry = {"fileName": write_obj(mesh, os.path.join(self._mesh_dir.name, f"{self._files}.obj"))}
        shape = p.createVisualShape(
            p.GEOM_MESH, rgbaColor=rgba, specularColor=[0.0, 0.0, 0.0], physicsClientId=self._client, **geometry
        )
        return p.createMultiBody(baseMass=0, baseVisualShapeIndex=shape, physicsClientId=self._client)

    def _build_world(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Add the road chunk by chunk; return each chunk's bounding sphere (centres (K, 3), radii (K,))."""
        c = self.circuit
        height = c.meta.wall_height_m
        double_walls = self.config.height_m >= height
        half = 0.5 * c.meta.line_width_m
        right_wall, left_wall = c.edges()
        lines = [right_wall, c.xy - c.normal * half, c.xy + c.normal * half, left_wall]
        keep = simplify(lines, TOLERANCE_M, MAX_SEGMENT_M)
        right_wall, line_right, line_left, left_wall = (a[keep] for a in lines)
        colours = [[v / 255.0 for v in rgb] + [1.0] for rgb in (PALETTE.asphalt, PALETTE.line, PALETTE.wall)]
        centres, radii = [], []
        for idx in chunk_runs(c.s[keep], CHUNK_M):
            # The road is three coplanar strips that meet at the line's edges: asphalt, line,
            # asphalt. Nothing overlaps, so nothing z-fights and the line needs no height.
            asphalt = merge(strip_mesh(right_wall[idx], line_right[idx]), strip_mesh(line_left[idx], left_wall[idx]))
            line = strip_mesh(line_right[idx], line_left[idx])
            # The right wall is walked backwards so that its front face, too, looks at the road.
            walls = merge(
                wall_mesh(right_wall[idx][::-1], height, double_walls), wall_mesh(left_wall[idx], height, double_walls)
            )
            meshes = (asphalt, line, walls)
            self._bodies.append([self._add_body(mesh, rgba) for mesh, rgba in zip(meshes, colours, strict=True)])
            self._colours.append(colours)
            corners = np.vstack([walls[0], asphalt[0]])
            centre = 0.5 * (corners.min(axis=0) + corners.max(axis=0))
            centres.append(centre)
            radii.append(np.linalg.norm(corners - centre, axis=1).max())
        self._shown = np.ones(len(self._bodies), dtype=bool)
        return np.array(centres), np.array(radii)

    # ------------------------------------------------------------------------------ the camera
    def _principal_point(self) -> tuple[float, float, float, float]:
        """(fx, fy, cx, cy) of the frustum; for TinyRenderer the principal point moves so that its
        off-centre samples see what the pixel centres see."""
        fx, fy, cx, cy = self.config.intrinsics()
        if self._tiny:
            cx -= 0.5 - TINY_SAMPLE_PX[0]
            cy -= 0.5 - TINY_SAMPLE_PX[1]
        return fx, fy, cx, cy

    def _projection_matrix(self) -> tuple[float, ...]:
        """Off-centre frustum whose image is exactly the cropped, resized frame."""
        fx, fy, cx, cy = self._principal_point()
        w, h = self.config.width_px, self.config.height_px
        n = NEAR_M
        left, right = -n * cx / fx, n * (w - cx) / fx
        top, bottom = n * cy / fy, -n * (h - cy) / fy
        return self._p.computeProjectionMatrix(left, right, bottom, top, n, FAR_M)

    def _frustum_planes(self) -> NDArray[np.float64]:
        """Unit inward normals (4, 3) of the frustum's side planes in camera (right, down, forward)
        coordinates, widened by a pixel on every side."""
        fx, fy, cx, cy = self._principal_point()
        w, h = self.config.width_px, self.config.height_px
        tl, tr = (cx + 1) / fx, (w - cx + 1) / fx
        tt, tb = (cy + 1) / fy, (h - cy + 1) / fy
        planes = np.array([[1.0, 0.0, tl], [-1.0, 0.0, tr], [0.0, 1.0, tt], [0.0, -1.0, tb]])
        return planes / np.linalg.norm(planes, axis=1, keepdims=True)

    def _pose(self, x: float, y: float, yaw: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Lens position and camera axes (rows: right, down, forward) in the world frame."""
        c, s = math.cos(yaw), math.sin(yaw)
        rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        return np.array([x, y, 0.0]) + rot @ self._lens, self._axes @ rot.T

    def _show_visible_chunks(self, eye: NDArray[np.float64], axes: NDArray[np.float64]) -> None:
        """Hide the chunks whose bounding sphere lies wholly outside the frustum, show the rest."""
        local = (self._centres - eye) @ axes.T
        visible = np.all(local @ self._planes.T >= -self._radii[:, None], axis=1)
        for k in np.flatnonzero(visible != self._shown):
            for body, rgba in zip(self._bodies[k], self._colours[k], strict=True):
                colour = rgba if visible[k] else rgba[:3] + [0.0]
                self._p.changeVisualShape(body, -1, rgbaColor=colour, physicsClientId=self._client)
        self._shown = visible

    def render(self, x: float, y: float, yaw: float) -> NDArray[np.uint8]:
        """RGB frame (H, W, 3) of a car at (x, y) in metres heading ``yaw`` radians."""
        if self._client is None:
            raise RendererClosedError("the pybullet renderer is closed; make a new one")
        p = self._p
        eye, axes = self._pose(x, y, yaw)
        if self._tiny:
            self._show_visible_chunks(eye, axes)
        _, down, forward = axes
        w, h = self.config.width_px, self.config.height_px
        _, _, rgba, depth, _ = p.getCameraImage(
            w,
            h,
            viewMatrix=p.computeViewMatrix(eye.tolist(), (eye + forward).tolist(), (-down).tolist()),
            projectionMatrix=self._projection,
            shadow=0,
            lightAmbientCoeff=1.0,
            lightDiffuseCoeff=0.0,
            lightSpecularCoeff=0.0,
            renderer=p.ER_TINY_RENDERER if self._tiny else p.ER_BULLET_HARDWARE_OPENGL,
            flags=p.ER_NO_SEGMENTATION_MASK,
            physicsClientId=self._client,
        )
        rgb = np.reshape(rgba, (h, w, 4))[..., :3]
        empty = np.reshape(depth, (h, w, 1)) >= 1.0  # no mesh there: grass or sky
        return np.where(empty, self._background, rgb).astype(np.uint8)

    def close(self) -> None:
        """Disconnect from pybullet and delete any mesh files; safe to call twice."""
        client, self._client = getattr(self, "_client", None), None
        if client is not None:
            # The server may already be gone (pybullet torn down at interpreter exit): nothing to free.
            with contextlib.suppress(Exception):
                if self._plugin is not None:
                    self._p.unloadPlugin(self._plugin, physicsClientId=client)
                self._p.disconnect(physicsClientId=client)
        mesh_dir, self._mesh_dir = getattr(self, "_mesh_dir", None), None
        if mesh_dir is not None:
            mesh_dir.cleanup()

    def __del__(self) -> None:
        self.close()
