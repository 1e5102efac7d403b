"""simeval: simulator-in-the-loop evaluation of optimized PilotNet driving models.

Importing the package registers the gymnasium environment ``simeval/FollowLine-v0``.
Heavy frameworks (torch, tensorflow) are imported only by the agents that need them.
"""

from __future__ import annotations

import gymnasium

__version__ = "0.1.0"

ENV_ID = "simeval/FollowLine-v0"

if ENV_ID not in gymnasium.registry:
    gymnasium.register(id=ENV_ID, entry_point="simeval.env:FollowLineEnv")
