"""Keep native libraries' information lines off the user's terminal, and nothing else.

TensorFlow and LiteRT print start-up notes from C++ straight to file descriptor 2 (absl's "All
log messages before absl::InitializeLog()...", the oneDNN notice, "INFO: Created TensorFlow Lite
XNNPACK delegate"); no environment variable or API turns them off. ``filtered`` captures fd 2
for the duration of a block and passes on every line that is not one of the given notes.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import tempfile
from collections.abc import Iterator

TENSORFLOW_NOTES = (
    b"WARNING: All log messages before absl::InitializeLog() is called",
    b"I0000 ",  # absl INFO lines at start-up (oneDNN custom operations notice)
)
LITERT_NOTES = (b"INFO: ", b"fully_quantize: ")


def _flush_c_stdio() -> None:
    """Flush C's stdio buffers, so native prints land in the capture and not after it."""
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):
        pass


@contextlib.contextmanager
def filtered(notes: tuple[bytes, ...]) -> Iterator[None]:
    """Run a block with fd 2 captured; afterwards write back every line not starting with ``notes``."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            _flush_c_stdio()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [line for line in capture.read().splitlines(keepends=True) if not line.startswith(notes)]
            if kept:
                os.write(2, b"".join(kept))
