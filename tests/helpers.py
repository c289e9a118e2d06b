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


def read_parquet_folder(filesystem, folder: str):
    """A Spark Parquet output (its ``part-*`` files) on any fsspec ``filesystem``, as pandas."""
    import pandas as pd  # noqa: PLC0415

    parts = filesystem.glob(f"{folder}/part-*.parquet")
    assert parts, f"no part file under {folder}"
    return pd.concat([pd.read_parquet(filesystem.open(part)) for part in parts], ignore_index=True)


def by_image(table, root: str):
    """``table`` sorted by each row's image path below the folder ``root``, in column ``image``
    (whatever the storage: local, s3a://, abfss://)."""
    from urllib.parse import unquote  # noqa: PLC0415

    images = [unquote(uri.split(f"/{root}/", 1)[1]) for uri in table["path"]]
    return table.assign(image=images).sort_values("image").reset_index(drop=True)
