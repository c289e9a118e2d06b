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


def by_image(table, root: str):
    """``table`` sorted by each row's image path below the folder ``root``, in column ``image``
    (whatever the storage: local, s3a://, abfss://)."""
    from urllib.parse import unquote  # noqa: PLC0415

    images = [unquote(uri.split(f"/{root}/", 1)[1]) for uri in table["path"]]
    return table.assign(image=images).sort_values("image").reset_index(drop=True)


def delta_files(filesystem, folder: str, version: int | None = None) -> list[str]:
    """The data files of a Delta table's version (default: the latest), from its log alone.

    Replays the JSON commits (after the last checkpoint, if any): the tests read Delta
    tables on any storage without Spark, and check versions independently of Delta's code.
    """
    import json  # noqa: PLC0415
    from urllib.parse import unquote  # noqa: PLC0415

    import pandas as pd  # noqa: PLC0415

    filesystem.invalidate_cache()  # another process wrote the table: list it afresh
    log = f"{folder}/_delta_log"
    commits = sorted(
        (int(name.rsplit("/", 1)[-1].split(".")[0]), name)
        for name in filesystem.glob(f"{log}/*.json")
    )
    assert commits, f"no Delta log under {folder}"
    version = commits[-1][0] if version is None else version
    active: set[str] = set()
    start = -1
    checkpoints = sorted(filesystem.glob(f"{log}/*.checkpoint.parquet"))
    usable = [c for c in checkpoints if int(c.rsplit("/", 1)[-1].split(".")[0]) <= version]
    if usable:
        start = int(usable[-1].rsplit("/", 1)[-1].split(".")[0])
        actions = pd.read_parquet(filesystem.open(usable[-1]), columns=["add"])
        active = {row["path"] for row in actions["add"].dropna()}
    for number, name in commits:
        if start < number <= version:
            for line in filesystem.cat_file(name).decode().splitlines():
                action = json.loads(line)
                if "add" in action:
                    active.add(action["add"]["path"])
                elif "remove" in action:
                    active.discard(action["remove"]["path"])
    return sorted(f"{folder}/{unquote(path)}" for path in active)


def read_delta_folder(filesystem, folder: str, version: int | None = None):
    """A Delta table's version (default: the latest) on any fsspec ``filesystem``, as pandas.

    The project's views (``VIEW_FOLDERS``: nothing written) are read where a table of that
    name would be: the image table joined with the store (``read_feature_views``).
    """
    import pandas as pd  # noqa: PLC0415

    for relative, view in VIEW_FOLDERS.items():
        if folder.rstrip("/").endswith(f"/{relative}"):
            assert version is None, "a view has no versions: read its tables' versions"
            accepted, rejected = read_feature_views(filesystem, folder[: -len(relative) - 1])
            return accepted if view == FEATURES_VIEW else rejected
    files = delta_files(filesystem, folder, version)
    if not files:
        return pd.DataFrame()
    return pd.concat([pd.read_parquet(filesystem.open(f)) for f in files], ignore_index=True)


def read_delta(folder: Path, version: int | None = None):
    """A local Delta table as pandas (see ``read_delta_folder``)."""
    from fsspec.implementations.local import LocalFileSystem  # noqa: PLC0415

    return read_delta_folder(LocalFileSystem(), str(folder), version)


def file_states(images) -> dict[str, tuple[int, int | None]]:
    """An image table's (pandas) ``path`` -> (size, modification time in ms or None)."""
    import pandas as pd  # noqa: PLC0415

    return {
        row.path: (int(row.size), None if pd.isna(row.modification_time)
                   else pd.Timestamp(row.modification_time).value // 1_000_000)
        for row in images.itertuples()
    }  # fmt: skip


def listed_states(listing) -> dict[str, tuple[int, int | None]]:
    """A ``FileListing``'s ``path`` -> (size, modification time in ms or None)."""
    return {
        path: (size, modified)
        for path, size, modified in zip(
            listing.paths, listing.sizes, listing.modification_ms, strict=True
        )
    }


IMAGES_TABLE = "02_intermediate/images"
STORE_TABLE = "04_feature/image_feature_store"
FEATURES_VIEW = "image_features"
REJECTED_VIEW = "rejected_images"
# Where the views' tables were before they became views: tests read them there as well.
VIEW_FOLDERS = {
    "04_feature/image_features": FEATURES_VIEW,
    "02_intermediate/rejected_images": REJECTED_VIEW,
}


def read_feature_views(filesystem, data_root: str, versions: dict[str, int] | None = None):
    """``image_features`` and ``rejected_images`` of a run's outputs, as pandas: the image
    table joined with the feature store (the project's views, recomputed here without Spark).

    ``versions``: the tables' versions (``images``, ``image_feature_store``) to read; default
    the latest.
    """
    versions = versions or {}
    images = read_delta_folder(
        filesystem, f"{data_root}/{IMAGES_TABLE}", versions.get("images")
    ).drop(columns=["content", "size", "modification_time"])
    store = read_delta_folder(
        filesystem, f"{data_root}/{STORE_TABLE}", versions.get("image_feature_store")
    )
    files = images.merge(store, on="content_hash", how="left")
    is_accepted = files["backbone"].notna() & files["rejection"].isna()
    identity = ["path", "label", "split", "content_hash", "backbone"]
    accepted = files.loc[is_accepted, [*identity, "features"]].reset_index(drop=True)
    rejected = files.loc[~is_accepted, identity].assign(
        reason=files.loc[~is_accepted, "rejection"].fillna("not featurized")
    )
    return accepted, rejected.reset_index(drop=True)


def read_view(data_root: Path, view: str, versions: dict[str, int] | None = None):
    """One of a local run's views (``FEATURES_VIEW`` or ``REJECTED_VIEW``), as pandas."""
    from fsspec.implementations.local import LocalFileSystem  # noqa: PLC0415

    accepted, rejected = read_feature_views(LocalFileSystem(), str(data_root), versions)
    return accepted if view == FEATURES_VIEW else rejected


def spark_feature_view(data_root: Path, outcome: str = "accepted"):
    """A local run's ``image_features`` (or ``rejected_images``) as Spark gives it outside a
    run: the catalog's dataset over the tables' current versions."""
    from fruits.datasets import FeatureViewDataset  # noqa: PLC0415

    return FeatureViewDataset(
        images=str(data_root / IMAGES_TABLE),
        image_feature_store=str(data_root / STORE_TABLE),
        outcome=outcome,
    ).load()
