"""The grid lookup that camera and car use agrees with the circuit's exact projection."""

from __future__ import annotations

import numpy as np
import pytest

from simeval.track.lookup import RoadGrid
from tests.support import TEST_CIRCUITS, circuit


@pytest.mark.parametrize("name", TEST_CIRCUITS)
def test_lateral_offset_and_margin_match_projection(name):
    c = circuit(name)
    grid = RoadGrid(c)
    rng = np.random.default_rng(0)
    s = rng.uniform(0, c.length_m, 2000)
    d = rng.uniform(-1.4, 1.4, 2000)
    road = grid.locate_world(c.position(s, d))
    # position() interpolates on 0.25 m chords and the lookup linearises d within 0.25 m cells: they
    # agree to a few millimetres, up to 1.5 cm on the inside of montmelo's 2.3 m-radius bends.
    assert np.max(np.abs(road.d - d)) < 0.015
    assert np.median(np.abs(road.d - d)) < 0.001
    w_right, w_left = c.width_at(s)
    assert np.max(np.abs(road.margin - np.minimum(w_left - d, w_right + d))) < 0.015
    for k in range(50):
        s_k, d_k, margin_k = grid.locate_point(*c.position(s[k], d[k]))
        assert d_k == pytest.approx(float(road.d[k]), abs=1e-4)
        assert margin_k == pytest.approx(float(road.margin[k]), abs=1e-4)
        gap = abs(s_k - s[k]) % c.length_m
        assert min(gap, c.length_m - gap) < 0.01


def test_points_far_from_the_road_are_outside():
    c = circuit("simple")
    grid = RoadGrid(c)
    far = np.array([[1e4, 1e4], [c.xy[:, 0].mean(), c.xy[:, 1].mean() + 500.0]])
    road = grid.locate_world(far)
    assert np.all(road.margin < -1000)
    assert np.isnan(grid.locate_point(*far[0])[0])
