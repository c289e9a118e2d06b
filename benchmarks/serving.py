"""The prediction service's rows: accuracy, latency, throughput and memory over real HTTP.

``fruits-serve`` runs in its own process on 127.0.0.1, on the models of a whole
``kedro run`` of the benchmark's images (no Spark running meanwhile); the clients run
in another new process (``benchmarks.load_client``: HTTP/1.1 keep-alive connections
with ``http.client``, the lightest client, so that the load generator takes as little
as possible of the cores the service needs).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from benchmarks import REPO
from benchmarks.cold_runs import ColdRun, kedro_run
from benchmarks.images import RawImages
from benchmarks.project import Project, stop_spark
from fruits.vision.backbone import PortableBackbone
from fruits.vision.embedder import load_embedder
from fruits.vision.images import preprocess_image

BIN = Path(sys.executable).parent
LATENCY_REQUESTS = 300
# Concurrent clients of the throughput row: enough to keep every interpreter busy.
CLIENTS = 4


@dataclass(frozen=True)
class ServingPlan:
    """How many requests the throughput and memory row sends."""

    requests: int = 10_000


class Service:
    """``fruits-serve`` started on a free port; ``stop()`` ends it."""

    def __init__(self, data_root: Path, port: int) -> None:
        self.port = port
        started = time.perf_counter()
        self.process = subprocess.Popen(
            [str(BIN / "fruits-serve"), "--port", str(port),
             "--params", f"data_root={data_root}", "--reload-interval", "0"],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        while not self._ready():
            if self.process.poll() is not None:
                sys.exit("fruits-serve did not start (run it by hand to see why)")
            time.sleep(0.05)
        self.start_seconds = time.perf_counter() - started

    def _ready(self) -> bool:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            connection.request("GET", "/readyz")
            return connection.getresponse().status == 200  # noqa: PLR2004
        except OSError:
            return False

    def rss_mb(self) -> float:
        return psutil.Process(self.process.pid).memory_info().rss / 2**20

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def single_image_ms(backbone: PortableBackbone, photo: bytes, calls: int = 200) -> float:
    """Median time of one interpreter call on one image, one thread (as each of the service's)."""
    embed = load_embedder(backbone, threads=1)
    image = preprocess_image(photo, backbone.input_size)[np.newaxis]
    for _ in range(20):
        embed(image)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        embed(image)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


def _client(port: int, mode: str, requests: int, photos: list[Path]) -> object:
    command = [sys.executable, "-m", "benchmarks.load_client", "--port", str(port),
               "--mode", mode, "--requests", str(requests), "--clients", str(CLIENTS),
               *map(str, photos)]  # fmt: skip
    return json.loads(subprocess.run(command, cwd=REPO, check=True, capture_output=True).stdout)


def latency_ms(port: int, photo: Path) -> dict[str, float]:
    """p50 and p99 of one photo's request, one client, sequential."""
    times = _client(port, "latency", LATENCY_REQUESTS, [photo])
    return {"p50": float(np.percentile(times, 50)), "p99": float(np.percentile(times, 99))}


def accuracy(port: int, test_images: list[tuple[str, str]]) -> float:
    """Share of the Test images whose top class (batch endpoint, 16 at a time) is their label."""
    import urllib3  # noqa: PLC0415

    http = urllib3.PoolManager()
    correct = 0
    for start in range(0, len(test_images), 16):
        chunk = test_images[start : start + 16]
        fields = [("photos", (str(i), Path(p).read_bytes(), "image/jpeg")) for i, (p, _) in
                  enumerate(chunk)]  # fmt: skip
        response = http.request("POST", f"http://127.0.0.1:{port}/v1/predict/batch?top=1",
                                fields=fields)  # fmt: skip
        results = json.loads(response.data)["results"]
        correct += sum(
            r["top"][0]["label"] == label for r, (_, label) in zip(results, chunk, strict=True)
        )
    return correct / len(test_images)


def throughput(service: Service, photos: list[Path], requests: int) -> dict[str, Any]:
    """``requests`` single-photo requests from ``CLIENTS`` clients; errors; server memory.

    Sent in two rounds (10%, then the rest) to read the server's memory in between.
    """
    memory = {"before_mb": service.rss_mb()}
    first = _client(service.port, "load", requests // 10, photos)
    memory["after_10pct_mb"] = service.rss_mb()
    rest = _client(service.port, "load", requests - requests // 10, photos)
    memory["after_mb"] = service.rss_mb()
    seconds = first["seconds"] + rest["seconds"]
    return {"requests": requests, "seconds": seconds, "images_per_s": requests / seconds,
            "errors": first["errors"] + rest["errors"], "clients": CLIENTS,
            "memory": memory}  # fmt: skip


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def predict_cold_seconds(data_root: Path, photo: Path) -> float:
    """``fruits-predict`` on one photo in a new process: start to exit (best of 2)."""
    times = []
    for _ in range(2):
        start = time.perf_counter()
        subprocess.run(
            [str(BIN / "fruits-predict"), str(photo), "--params", f"data_root={data_root}"],
            cwd=REPO, check=True, capture_output=True,
        )  # fmt: skip
        times.append(time.perf_counter() - start)
    return min(times)


def serving_rows(
    project: Project, raw: RawImages, weights: Path, backbone: PortableBackbone, plan: ServingPlan
) -> dict[str, Any]:
    """A whole `kedro run` of ``raw`` in a new process, then the service on its models.

    The benchmark's own Spark session is stopped first: the service is measured as it
    runs in production, alone on the machine with its clients.
    """
    stop_spark()
    data_root = project.new_data_root("serving")
    run = kedro_run(ColdRun(raw.path, weights, data_root, pipelines=None))
    reporting = data_root / "08_reporting"
    metrics = json.loads((reporting / "classification_metrics.json").read_text())
    # The test split's photos, as the pipeline labels them: the class folders under Test/.
    test_images = sorted(
        (str(photo), photo.parent.name) for photo in Path(raw.path, "Test").glob("*/*.jpg")
    )
    photos = [Path(path) for path, _ in test_images[:200]]
    service = Service(data_root, _free_port())
    try:
        result = {
            "kedro_run_s": run["seconds"],
            "service_start_s": service.start_seconds,
            "interpreter_single_image_ms": single_image_ms(backbone, photos[0].read_bytes()),
            "latency_ms": latency_ms(service.port, photos[0]),
            "accuracy": accuracy(service.port, test_images),
            "pipeline_accuracy": metrics["accuracy"],
            "n_test_images": len(test_images),
            "load": throughput(service, photos, plan.requests),
            "interpreters": os.cpu_count() or 1,
        }
    finally:
        service.stop()
    result["predict_cold_s"] = predict_cold_seconds(data_root, Path(test_images[0][0]))
    project.discard(data_root)
    print(f"service: {result['load']['images_per_s']:.1f} images/s", flush=True)
    return result
