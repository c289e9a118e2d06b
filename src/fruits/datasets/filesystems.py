"""Where a dataset's path points: one place for Spark's URIs and fsspec's file systems.

Spark and fsspec name the same storage differently (``s3a://`` is fsspec's ``s3://``,
``abfss://``/``wasbs://`` are adlfs's ``abfs://``): kedro-datasets' Spark helpers hold that
mapping, and every dataset of this project goes through them here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import fsspec
from kedro_datasets._utils.databricks_utils import parse_spark_filepath
from kedro_datasets._utils.spark_utils import get_spark_filesystem

from fruits.errors import FruitsInputError

T = TypeVar("T")

# How long the checks before a run wait for remote storage to answer one request. A healthy
# object store answers in well under a second; without a network S3A and s3fs retry silently
# for minutes (measured: 280 s for S3A, 160 s for s3fs against a server that never answers).
STORAGE_ANSWER_SECONDS = 30
# botocore's timeouts for every S3 client of our fsspec datasets (a setting in fs_args'
# config_kwargs wins): seconds, not botocore's 60 s per read times its retries.
S3_CLIENT_CONFIG: dict[str, Any] = {
    "connect_timeout": 5,
    "read_timeout": 30,
    "retries": {"max_attempts": 3},
}


def spark_uri(filepath: str) -> str:
    """``filepath`` as Spark should get it: a local path made absolute, a URI unchanged.

    Spark resolves relative paths against its JVM's start directory, not Python's: pin
    them, as kedro-datasets' Spark datasets do. No trailing slash.
    """
    uri = filepath if "://" in filepath else str(Path(filepath).resolve())
    return uri.rstrip("/")


def filesystem(
    uri: str, fs_args: dict[str, Any] | None = None
) -> tuple[fsspec.AbstractFileSystem, str]:
    """The fsspec file system behind a Spark path or URI, and the path within it."""
    protocol, path = parse_spark_filepath(uri)
    if protocol in ("s3", "s3a", "s3n"):
        fs_args = dict(fs_args or {})
        fs_args["config_kwargs"] = {**S3_CLIENT_CONFIG, **fs_args.get("config_kwargs", {})}
    return get_spark_filesystem(protocol, fs_args), path


class StorageUnreachableError(FruitsInputError):
    """Remote storage gave no answer in time (no network, wrong endpoint)."""


def answered_within(call: Callable[[], T], uri: str) -> T:
    """``call()``'s result, or a one-line error if ``uri``'s storage has not answered within
    ``STORAGE_ANSWER_SECONDS``.

    The call runs in a daemon thread: a storage client stuck in its retries cannot be
    interrupted, but it no longer holds the run (nor the process's exit).

    Raises:
        StorageUnreachableError: ``call`` did not return in time.
    """
    seconds = STORAGE_ANSWER_SECONDS
    outcome: dict[str, Any] = {}

    def attempt() -> None:
        try:
            outcome["value"] = call()
        except BaseException as error:  # handed to the caller's thread
            outcome["error"] = error

    worker = threading.Thread(target=attempt, name=f"storage probe {uri}", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise StorageUnreachableError(
            f"{uri} did not answer within {seconds:g} s: check the network, the storage "
            "endpoint and the credentials, then run again."
        )
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
