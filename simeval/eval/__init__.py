"""Evaluation: the episode loop (``rollout``), lap metrics, run folders, sweeps and their reports."""
