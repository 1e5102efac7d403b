"""The PilotNet data set: the expert's camera frames and commands, recorded on the training circuits.

Made by ``python -m simeval.dataset`` (``generate``); read by ``load_split`` and ``load_test_set``.
The package: ``config`` (settings, layout), ``collect`` (driving the expert), ``store`` (files,
manifest, readers), ``generate`` (the plan and its jobs).

Why it is made this way:

- Only circuits whose role is 'train' are driven; the test circuits (simple, montreal, montmelo)
  appear only in the test sets, which are used for offline MSE alone.
- A network that has only seen the expert on the line never learns to come back to it. So the
  executed command is the expert's plus seeded, temporally correlated noise (an Ornstein-Uhlenbeck
  process, DART-style) while the recorded label stays the expert's own command for the frame it
  saw; episodes start at random points, a little off the line and askew; and every circuit is
  driven in both directions where the expert can drive a noise-free lap that way.
- Validation is on held-out training circuits (``DEFAULT_VAL_CIRCUITS``: one generated loop and
  three TUMFTM tracks, both directions), so the trainer measures generalisation to unseen roads.
- Each chunk is a pure function of (settings, split, chunk index): its episodes are seeded from
  ``SeedSequence([seed, split id, chunk index, episode index])``. So an interrupted run continues
  where it stopped, and any number of ``--jobs`` gives byte-identical files.

On-disk format (``FORMAT``)::

    manifest.json            what is here: format, code version, settings, circuits, per-split
                             frame counts, chunk files with sha256, label statistics, crash rate,
                             and the test sets; ``complete`` is true once every file is written
    train/chunk-00000.npz    ``chunk_frames`` frames each (the last chunk holds the remainder)
    val/chunk-00000.npz
    test/<circuit>.npz       one noise-free expert lap from the spawn of each test circuit

Every .npz holds the arrays of ``ARRAYS``, one row per frame the expert saw: ``frames`` (the
66x200 RGB observation), ``labels`` (the expert's v m/s, w rad/s for that frame), ``executed``
(the noisy command actually applied, clipped to the car's limits), ``circuit`` (index into the
manifest's ``circuits``; a reversed direction is its own entry, e.g. 'austin-reverse'), ``pose``
(x m, y m, yaw rad), ``s`` and ``d`` (arc length and lateral offset on the driven direction, m),
``t`` (simulated time since the episode started, s) and ``episode`` (chunk index * 65536 +
episode number in the chunk, unique within a split). Frames after a crash are never recorded.
Files are written whole (temp file + rename) and their zip entries carry a fixed date, so the
same settings give the same bytes.
"""

from simeval.build.dataset.config import ARRAYS, SPLITS, DatasetConfig, NoiseConfig
from simeval.build.dataset.generate import generate
from simeval.build.dataset.store import DatasetManifest, load_manifest, load_split, load_test_set, manifest_sha256

__all__ = [
    "ARRAYS", "SPLITS", "DatasetConfig", "DatasetManifest", "NoiseConfig", "generate", "load_manifest", "load_split",
    "load_test_set", "manifest_sha256",
]
