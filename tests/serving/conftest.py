"""`fruits-serve` started for real on 127.0.0.1, on the models of a pipeline run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import urllib3

from tests.conftest import REPO, _free_loopback_port

FRUITS_SERVE = str(Path(sys.executable).parent / "fruits-serve")


@dataclass(frozen=True)
class Service:
    """A running service: its URL, the data root it serves from and its log file."""

    url: str
    data_root: Path
    log: Path
    http: urllib3.PoolManager

    def request(self, method: str, path: str, **kwargs) -> tuple[int, dict]:
        response = self.http.request(method, self.url + path, **kwargs)
        return response.status, json.loads(response.data or b"null")

    def predict(self, content: bytes, content_type: str = "image/jpeg", top: int = 3):
        return self.request(
            "POST", f"/v1/predict?top={top}", body=content, headers={"Content-Type": content_type}
        )


def start_service(data_root: Path | str, log: Path, *options: str) -> tuple[subprocess.Popen, str]:
    """``fruits-serve`` on the models under ``data_root``, in its own process group.

    Waits until /readyz answers. ``options`` are more of its command-line options.
    """
    port = _free_loopback_port()
    process = subprocess.Popen(
        [FRUITS_SERVE, "--port", str(port), "--params", f"data_root={data_root}", *options],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
        env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"},
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    http = urllib3.PoolManager(retries=False, timeout=5)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"fruits-serve exited {process.returncode}: {log.read_text()}")
        try:
            if http.request("GET", url + "/readyz").status == 200:  # noqa: PLR2004
                return process, url
        except urllib3.exceptions.HTTPError:
            time.sleep(0.2)
    stop_service(process)
    raise AssertionError(f"fruits-serve not ready in 90 s: {log.read_text()}")


def stop_service(process: subprocess.Popen) -> None:
    """TERM (uvicorn's graceful stop), then KILL the whole group if it lingers."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture(scope="module")
def service(pipeline_run, tmp_path_factory) -> Iterator[Service]:
    """The service on a copy of the pipeline run's outputs (tests may replace its models)."""
    data_root = tmp_path_factory.mktemp("served") / "data"
    shutil.copytree(pipeline_run.data_root, data_root)
    log = data_root.parent / "fruits-serve.log"
    process, url = start_service(data_root, log, "--reload-interval", "0.5")
    try:
        http = urllib3.PoolManager(retries=False, maxsize=16, timeout=60)
        yield Service(url, data_root, log, http)
    finally:
        stop_service(process)
