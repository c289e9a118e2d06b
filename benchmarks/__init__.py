"""Featurization benchmark: plain Keras, the classic Spark template, our stage, `kedro run`.

Everything runs in one invocation, on the same images and cores, so that the ratios
hold even on a machine whose speed drifts (shared cloud cores do). Our stage runs as
users run it: the project's pipelines through a ``KedroSession`` (env ``local``, the
project's catalog, hooks and runner). Writes ``benchmarks/results.json`` and
``BENCHMARKS.md``.

    .venv/bin/python -m benchmarks            # the full benchmark (20-35 min)
    .venv/bin/python -m benchmarks --quick    # 1,000 images, no scaling/sizes
    .venv/bin/python -m benchmarks --smoke    # a few images, every part once: a check, not figures

Modules: ``project`` (the Kedro project run in this process), ``measure`` (the timed
rows of our stage), ``baselines`` (rows a, b and the interpreter ceiling),
``cold_runs`` (row d, ``kedro run`` in a new process), ``images`` (which files),
``machine`` (what the figures were measured on), ``report`` (BENCHMARKS.md),
``sizing`` (EMR cost model), ``plan`` (how much of it runs).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
# Every KedroSession describes the git work tree: never take the index lock for it.
os.environ.setdefault("GIT_OPTIONAL_LOCKS", "0")
