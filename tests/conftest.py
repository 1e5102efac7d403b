"""Importing simeval registers the gymnasium env for every test."""

import simeval  # noqa: F401
