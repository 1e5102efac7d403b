"""The simulated world: the car, the clock and walls, the camera and its renderers, scenarios."""
