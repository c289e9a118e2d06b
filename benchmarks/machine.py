"""What the figures were measured on: the machine, memory of a process tree, Spark's floor."""

from __future__ import annotations

import os
import platform
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psutil
from pyspark.sql import DataFrame, SparkSession


def machine() -> dict[str, Any]:
    """CPU, cores, memory, OS and the versions that matter."""
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor(),
    )  # fmt: skip
    import pyspark  # noqa: PLC0415
    import tensorflow as tf  # noqa: PLC0415 - seconds to import: only once measuring

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "pyspark": pyspark.__version__,
    }


class PeakTreeMemory:
    """Samples the summed RSS of a process and all its descendants (JVM, Python workers)."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.peak_bytes = 0
        self._root = psutil.Process(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, args=(interval,), daemon=True)
        self._thread.start()

    def _sample(self, interval: float) -> None:
        while not self._stop.is_set():
            try:
                tree = [self._root, *self._root.children(recursive=True)]
                total = sum(p.memory_info().rss for p in tree if p.is_running())
                self.peak_bytes = max(self.peak_bytes, total)
            except psutil.Error:
                pass
            self._stop.wait(interval)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak_bytes


def timed_noop_write(frame: DataFrame) -> float:
    """Seconds to compute every row (Spark's no-op sink: no output I/O)."""
    start = time.perf_counter()
    frame.write.format("noop").mode("overwrite").save()
    return time.perf_counter() - start


def spark_job_latency(spark: SparkSession, repeats: int = 7) -> dict[str, float]:
    """Milliseconds of Spark jobs that do (almost) nothing: the floor under every job.

    Medians over ``repeats`` of three jobs on a cached two-partition table: JVM only;
    through a Python worker (mapInArrow, like the CNN); after a shuffle.
    """
    table = spark.range(0, 1000, 1, 2).cache()
    table.count()

    def same_batches(batches: Iterator[Any]) -> Iterator[Any]:
        yield from batches

    jobs = {
        "jvm": table.selectExpr("id + 1 AS id"),
        "python": table.mapInArrow(same_batches, table.schema),
        "shuffle": table.repartition(2),
    }
    latency = {}
    for name, frame in jobs.items():
        timed_noop_write(frame)  # warm
        latency[name] = 1000 * float(np.median([timed_noop_write(frame) for _ in range(repeats)]))
    table.unpersist()
    return latency
