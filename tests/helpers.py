"""Small helpers shared by the tests."""

import hashlib
from pathlib import Path


def local_path(spark_path: str) -> Path:
    """The local file behind a Spark ``path`` such as ``file:/a/Apple Braeburn/1.jpg``.

    Spark's ``path`` column is a Hadoop path, not a URI: nothing is percent-encoded.
    """
    return Path(spark_path.removeprefix("file://").removeprefix("file:"))


def split_by_hash(content: bytes, test_share: float = 0.2) -> str:
    """The split ingestion gives an image outside the split folders, recomputed here.

    The SHA-256's first 4 bytes as an unsigned integer over 2**32: below ``test_share``
    is Test, else Training (the default ``ingestion.unsplit_*`` names).
    """
    place = int.from_bytes(hashlib.sha256(content).digest()[:4], "big") / 2**32
    return "Test" if place < test_share else "Training"
