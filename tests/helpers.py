"""Small helpers shared by the tests."""

from pathlib import Path


def local_path(spark_path: str) -> Path:
    """The local file behind a Spark ``path`` such as ``file:/a/Apple Braeburn/1.jpg``.

    Spark's ``path`` column is a Hadoop path, not a URI: nothing is percent-encoded.
    """
    return Path(spark_path.removeprefix("file://").removeprefix("file:"))
