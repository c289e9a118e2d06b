"""(d) ``kedro run --env local`` in a new process, as a user runs it: cold, start to exit."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import REPO
from benchmarks.machine import PeakTreeMemory

# `kedro run` is timed this many times with each variant, alternating (start-up costs vary).
KEDRO_RUNS = 2
# What the issue times: features and PCA. Classification and plots are extra.
COLD_PIPELINES = "ingestion,featurization,reduction"
# (d)'s variants: the defaults, then one setting changed (runner, or the JVM's JIT).
KEDRO_RUN_VARIANTS: dict[str, dict[str, str]] = {
    "defaults (ThreadRunner, C1 JIT)": {},
    "--runner SequentialRunner": {"runner": "SequentialRunner"},
    "HotSpot's default JIT (C1 + C2)": {"java_options": "-XX:TieredStopAtLevel=4"},
}


@dataclass(frozen=True)
class ColdRun:
    """One ``kedro run``: its inputs, its output folder, and the setting changed."""

    raw_images_path: str
    weights: Path
    data_root: Path
    runner: str | None = None
    # Replace conf/local's spark.driver.extraJavaOptions for this run.
    java_options: str | None = None
    # `--pipelines` (None: the default pipeline, every pipeline).
    pipelines: str | None = COLD_PIPELINES

    def command(self) -> list[str]:
        params = (
            f"raw_images_path={self.raw_images_path},data_root={self.data_root},"
            f"weights_source={self.weights}"
        )
        return [
            str(Path(sys.executable).parent / "kedro"),
            "run",
            "--env",
            "local",
            *(["--pipelines", self.pipelines] if self.pipelines else []),
            f"--params={params}",
            *(["--runner", self.runner] if self.runner else []),
        ]

    def environment(self) -> dict[str, str]:
        environment = os.environ.copy()
        if self.java_options is not None:
            # spark-submit applies its own arguments after the --conf the project passes.
            environment["PYSPARK_SUBMIT_ARGS"] = (
                f'--driver-java-options "{self.java_options}" pyspark-shell'
            )
        return environment


def kedro_run(run: ColdRun) -> dict[str, float]:
    """Seconds from start to exit (Python and JVM start, weights, TFLite export, PCA and
    every write included) and the process tree's peak memory."""
    start = time.perf_counter()
    process = subprocess.Popen(
        run.command(),
        cwd=REPO,
        env=run.environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    memory = PeakTreeMemory(process.pid)
    _, stderr = process.communicate()
    elapsed = time.perf_counter() - start
    peak = memory.stop()
    if process.returncode != 0:
        sys.exit(f"kedro run failed:\n{stderr.decode(errors='replace')[-3000:]}")
    return {"seconds": elapsed, "peak_rss_mb": peak / 2**20}


@dataclass(frozen=True)
class ColdRows:
    """How (d) runs: on which images and weights, how many times, which variants."""

    raw_images_path: str
    weights: Path
    workdir: Path
    runs: int = KEDRO_RUNS
    variants: tuple[str, ...] = tuple(KEDRO_RUN_VARIANTS)

    def measure(self, k_of: Callable[[Path], int]) -> tuple[dict[str, Any], dict[str, list[float]]]:
        """(d) with the defaults and each variant, alternately: the defaults' mean seconds,
        runs, peak memory and k (``k_of(data_root)``, read once every run is over);
        every variant's runs."""
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in self.variants}
        base = ColdRun(self.raw_images_path, self.weights, self.workdir)
        for attempt in range(self.runs):
            for index, (name, done) in enumerate(runs.items()):
                data_root = self.workdir / f"kedro_run_{index}_{attempt}"
                run = replace(base, data_root=data_root, **KEDRO_RUN_VARIANTS[name])
                done.append(kedro_run(run) | {"data_root": data_root})
                print(f"kedro run, {name}: {done[-1]['seconds']:.1f} s", flush=True)
        default = next(iter(runs.values()))
        row = {
            "seconds": float(np.mean([run["seconds"] for run in default])),
            "runs_s": [run["seconds"] for run in default],
            "peak_rss_mb": max(run["peak_rss_mb"] for run in default),
            "k": k_of(default[0]["data_root"]),
        }
        for done in runs.values():
            for run in done:
                shutil.rmtree(run["data_root"], ignore_errors=True)
        return row, {name: [run["seconds"] for run in done] for name, done in runs.items()}
