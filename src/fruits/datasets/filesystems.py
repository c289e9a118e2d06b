"""Where a dataset's path points: one place for Spark's URIs and fsspec's file systems.

Spark and fsspec name the same storage differently (``s3a://`` is fsspec's ``s3://``,
``abfss://``/``wasbs://`` are adlfs's ``abfs://``): kedro-datasets' Spark helpers hold that
mapping, and every dataset of this project goes through them here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fsspec
from kedro_datasets._utils.databricks_utils import parse_spark_filepath
from kedro_datasets._utils.spark_utils import get_spark_filesystem


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
    return get_spark_filesystem(protocol, fs_args), path
