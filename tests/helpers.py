"""Small helpers shared by the tests."""

from pathlib import Path
from urllib.parse import unquote, urlparse


def local_path(spark_uri: str) -> Path:
    """The local file behind a Spark file URI such as ``file:/a/Apple%20Braeburn/1.jpg``."""
    return Path(unquote(urlparse(spark_uri).path))
