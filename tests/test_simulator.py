"""The car and the clock: exact kinematics, walls, forward-only progress, scheduled commands."""

from __future__ import annotations

import math

import pytest

from simeval.sim.simulator import US, SimConfig, Simulator
from simeval.sim.vehicle import CarState, VehicleConfig, move
from tests.support import circuit


def test_straight_and_arc_are_exact():
    car = CarState(0.0, 0.0, 0.0)
    move(car, 2.0, 0.0, 1.5, lag_s=0.0)
    assert (car.x, car.y, car.yaw) == pytest.approx((3.0, 0.0, 0.0))
    car = CarState(0.0, 0.0, 0.0)
    for _ in range(100):  # a quarter circle of radius 4 m in 100 pieces
        move(car, 4.0 * (math.pi / 2) / 1.0, math.pi / 2, 0.01, lag_s=0.0)
    assert (car.x, car.y, car.yaw) == pytest.approx((4.0, 4.0, math.pi / 2), abs=1e-9)


def test_actuator_lag_delays_the_speed():
    car = CarState(0.0, 0.0, 0.0)
    move(car, 10.0, 0.0, 0.1, lag_s=0.1)
    assert car.v == pytest.approx(10.0 * (1 - math.exp(-1)))


def test_commands_are_clipped_to_the_vehicle_limits():
    vehicle = VehicleConfig()
    assert vehicle.clip(99.0, -99.0) == (vehicle.max_speed_mps, -vehicle.max_yaw_rate_radps)
    assert vehicle.clip(-3.0, 0.5) == (0.0, 0.5)


def _sim(name="simple") -> Simulator:
    return Simulator(circuit(name))


def test_driving_straight_off_the_road_touches_the_wall():
    sim = _sim()
    x, y, yaw = sim.circuit.spawn_pose
    sim.reset(x, y, yaw + math.pi / 2)  # facing the left wall, 1.55 m away
    sim.command(2.0, 0.0)
    sim.advance(5 * US)
    assert sim.contact
    assert sim.time_s < 1.0  # stopped at the wall, not after the full 5 s


def test_progress_counts_forward_only():
    sim = _sim()
    x, y, yaw = sim.circuit.spawn_pose
    sim.reset(x, y, yaw + math.pi)  # facing backwards along the lap
    sim.command(5.0, 0.0)
    sim.advance(2 * US)
    assert sim.unwrapped_m == pytest.approx(-10.0, abs=0.2)
    assert sim.progress_m == 0.0
    sim.reset(x, y, yaw)
    sim.command(5.0, 0.0)
    sim.advance(2 * US)
    assert sim.progress_m == pytest.approx(10.0, abs=0.2)
    assert sim.distance_m == pytest.approx(10.0, abs=1e-9)


def test_scheduled_command_acts_at_its_time():
    sim = _sim()
    sim.command(10.0, 0.0, at_us=30_000)
    sim.advance(50_000)
    # 30 ms at rest, then 20 ms at 10 m/s.
    assert sim.distance_m == pytest.approx(0.2, abs=1e-9)
    assert sim.executing == (10.0, 0.0)


def test_clock_is_integer_microseconds():
    sim = _sim()
    for _ in range(7):
        sim.advance(SimConfig().control_dt_us)
    assert sim.time_us == 350_000


def test_bad_sim_config_is_refused():
    with pytest.raises(ValueError, match="physics_dt_s"):
        SimConfig(physics_dt_s=0.1, control_dt_s=0.05)
