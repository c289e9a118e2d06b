"""Dataset for the raw image files: every file under a folder, with its bytes."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd
from kedro.io import AbstractDataset, DatasetError
from kedro_datasets.spark import SparkDatasetV2
from pyspark.errors import AnalysisException
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from fruits.datasets.file_listing import FileListing, list_files
from fruits.datasets.filesystems import answered_within, spark_uri
from fruits.errors import FruitsInputError
from fruits.spark.listing import RawFiles

logger = logging.getLogger(__name__)


class ImageFilesDataset(AbstractDataset[None, RawFiles]):
    """Image files under a folder: listed on the driver, read by Spark's ``binaryFile`` source.

    ``load`` lists (``fruits.datasets.file_listing``: one walk locally, one LIST request
    per 1,000 keys on an object store, Spark's rules for which files it reads); bytes are
    read only for the files asked for (``RawFiles``). Every listed file is an input,
    zero-byte ones included (Spark's scan skips them; they are inputs to report, not to
    lose). ``load_args`` go to the source (``recursiveFileLookup``, ``pathGlobFilter``
    naming the image suffixes...), ``fs_args`` to fsspec for the listing. Works for local
    folders, ``s3a://`` and ``abfss://``.

    Example catalog entry::

        raw_images:
          type: fruits.datasets.ImageFilesDataset
          filepath: s3a://my-bucket/raw
          load_args:
            recursiveFileLookup: true
            pathGlobFilter: "*.{jpg,png}"
          fs_args: {}
    """

    def __init__(
        self,
        *,
        filepath: str,
        load_args: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._filepath = spark_uri(filepath)
        self._load_args = dict(load_args or {})
        self._fs_args = dict(fs_args or {})
        self._files = SparkDatasetV2(
            filepath=self._filepath, file_format="binaryFile", load_args=self._load_args
        )
        self.metadata = metadata
        # The listing verify() made, used by the loads after it: a run (whose input check
        # calls verify) lists the folder once, however many nodes read it.
        self._verified_listing: FileListing | None = None

    def load(self) -> RawFiles:
        """The files under the folder: their listing, and their bytes on demand.

        ``path`` is a Hadoop path (nothing percent-encoded), as Spark's source gives it.
        In a local folder, a symbolic link to nothing is an input too, without bytes:
        Spark's listing drops it, but it is a file the user meant (rejected and counted
        later).
        """
        listing = self._verified_listing if self._verified_listing is not None else self._list()
        spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
        columns = {
            "path": listing.paths, "size": listing.sizes, "modified": listing.modification_ms,
        }  # fmt: skip
        # Through Arrow (spark.sql.execution.arrow.pyspark.enabled): one batch, not a row
        # per file through py4j.
        listed = spark.createDataFrame(
            pd.DataFrame(columns).astype({"size": "int64", "modified": "Int64"}),
            "path string, size long, modified long",
        ).select("path", "size", F.timestamp_millis("modified").alias("modification_time"))
        return RawFiles(listed, scan=self._files.load, empty_paths=listing.empty_paths())

    def _list(self) -> FileListing:
        return list_files(self._filepath, self._load_args.get("pathGlobFilter"), self._fs_args)

    def verify(self) -> None:
        """Fail now, with one line, if the folder is missing, holds no image file, or
        holds image files outside class sub-folders.

        Only the file listing is made: no file is read. Remote storage must answer a
        first request within seconds (``answered_within``), not after minutes of silent
        retries.
        """
        self._verified_listing = None  # a failed check leaves no listing behind
        try:
            if "://" in self._filepath:
                if not answered_within(self._exists, self._filepath):
                    raise self._missing()
            elif not Path(self._filepath).is_dir():
                raise self._missing()
            listing = self._list()
        except FruitsInputError:
            raise
        except ImportError as error:  # fsspec has no file system for this scheme here
            raise FruitsInputError(
                f"Raw image folder {self._filepath} cannot be listed: {str(error).splitlines()[0]} "
                "(the listing goes through fsspec); install it, or use a local, s3a:// or "
                "abfss:// folder."
            ) from error
        except Exception as error:
            if _is_missing_path(error):
                raise self._missing() from error
            scheme = self._filepath.split("://", 1)[0] if "://" in self._filepath else ""
            if f'No FileSystem for scheme "{scheme}"' in str(error) or (
                "ClassNotFoundException" in str(error) and scheme
            ):
                raise FruitsInputError(
                    f"This Spark cannot read {scheme}:// paths ({self._filepath}): its Hadoop "
                    "connector is not on the classpath; run in the environment made for that "
                    "storage (--env emr for s3a://), or add the connector's jars to spark.jars."
                ) from error
            raise
        if not listing:
            raise FruitsInputError(
                f"Raw image folder {self._filepath} holds no image files (.jpg, .jpeg, .png, "
                "...): put the images there, one sub-folder per class, or point "
                "raw_images_path elsewhere."
            )
        self._refuse_unlabelled_files(listing)
        self._check_local_files(listing)
        self._verified_listing = listing

    def _exists(self) -> bool:
        # One request through the same Hadoop connector (and settings) as the listing.
        spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
        root = spark._jvm.org.apache.hadoop.fs.Path(self._filepath)
        return bool(root.getFileSystem(spark._jsc.hadoopConfiguration()).exists(root))

    def _missing(self) -> FruitsInputError:
        return FruitsInputError(
            f"Raw image folder {self._filepath} does not exist: pass "
            "--params=raw_images_path=<folder with one sub-folder per class>."
        )

    def _check_local_files(self, listing: FileListing) -> None:
        if listing.unreadable:
            raise FruitsInputError(
                f"{len(listing.unreadable)} image file(s) under {self._filepath} cannot be read "
                f"by this user (e.g. {listing.unreadable[0]}): fix their permissions "
                "(chmod a+r) or move them out."
            )
        if listing.dangling:
            logger.warning(
                "%d symbolic link(s) under %s point to nothing: rejected as empty (e.g. %s).",
                len(listing.dangling),
                self._filepath,
                listing.dangling[0],
            )

    def _refuse_unlabelled_files(self, listing: FileListing) -> None:
        # A file directly in the root would be labelled with the root folder's own name.
        in_root = listing.files_in_root()
        if in_root:
            raise FruitsInputError(
                f"{in_root[0]} is directly in the raw image folder {self._filepath}: images "
                "must be in one sub-folder per class (named after the fruit); move it there."
            )

    def save(self, data: None) -> None:
        """Refuse to write: the raw images are an input of the project."""
        raise DatasetError("ImageFilesDataset is read-only.")

    def _describe(self) -> dict[str, Any]:
        # Not fs_args: they may hold credentials, and Kedro logs descriptions.
        return {"filepath": self._filepath, "load_args": self._load_args}


def _is_missing_path(error: BaseException | None) -> bool:
    while error is not None:
        if isinstance(error, AnalysisException) and "PATH_NOT_FOUND" in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False
