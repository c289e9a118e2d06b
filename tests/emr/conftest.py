"""A real S3 API on 127.0.0.1 (moto's server mode), started and stopped by the tests."""

import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import pytest
from moto.server import ThreadedMotoServer

REGION = "eu-west-3"


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    environment: dict[str, str]

    def client(self):
        return boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION)


def _free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def s3_server(monkeypatch_module) -> Iterator[S3Server]:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    port = _free_loopback_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    # Throw-away credentials of the local emulator; AWS_ENDPOINT_URL points boto3/s3fs at it.
    environment = {
        "AWS_ACCESS_KEY_ID": "rehearsal",
        "AWS_SECRET_ACCESS_KEY": "rehearsal",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": endpoint,
    }
    for key, value in environment.items():
        monkeypatch_module.setenv(key, value)
    try:
        yield S3Server(endpoint, environment)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch
