"""Dataset for the raw image files: every file under a folder, with its bytes."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError
from kedro_datasets.spark import SparkDatasetV2
from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession

from fruits.datasets.filesystems import answered_within, spark_uri
from fruits.datasets.local_files import unusable_files
from fruits.errors import FruitsInputError
from fruits.spark.listing import RawFiles, listed_file_count

logger = logging.getLogger(__name__)


class ImageFilesDataset(AbstractDataset[None, RawFiles]):
    """Image files under a folder, through Spark's ``binaryFile`` source: listed, then read.

    ``load`` lists; bytes are read only for the files asked for (``RawFiles``). Every
    file the source lists is an input, zero-byte ones included (Spark's scan skips
    them; they are inputs to report, not to lose). ``load_args`` go to the source
    (``recursiveFileLookup``, ``pathGlobFilter`` naming the image suffixes...). Works for
    any path Spark reads: local, ``s3a://``, ``abfss://``, ``hdfs://``.

    Example catalog entry::

        raw_images:
          type: fruits.datasets.ImageFilesDataset
          filepath: s3a://my-bucket/raw
          load_args:
            recursiveFileLookup: true
            pathGlobFilter: "*.{jpg,png}"
    """

    def __init__(
        self,
        *,
        filepath: str,
        load_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._filepath = spark_uri(filepath)
        self._load_args = dict(load_args or {})
        self._files = SparkDatasetV2(
            filepath=self._filepath, file_format="binaryFile", load_args=self._load_args
        )
        self.metadata = metadata
        # The listing verify() made, used by the loads after it: a run (whose input check
        # calls verify) lists the folder once, however many nodes read it.
        self._verified_files: DataFrame | None = None

    def load(self) -> RawFiles:
        """The files under the folder: their listing, and their bytes on demand.

        ``path`` is a Hadoop path (nothing percent-encoded). In a local folder, a symbolic
        link to nothing is an input too, without bytes: Spark's listing drops it, but it is
        a file the user meant (rejected and counted later).
        """
        files = self._verified_files if self._verified_files is not None else self._files.load()
        if "://" in self._filepath:
            return RawFiles(files)
        _, dangling = unusable_files(Path(self._filepath), self._load_args.get("pathGlobFilter"))
        return RawFiles(files, tuple(f"file:{link}" for link in dangling))

    def verify(self) -> None:
        """Fail now, with one line, if the folder is missing, holds no image file, or
        holds image files outside class sub-folders.

        Only the source's file listing is made: no file is read. Remote storage must
        answer a first request within seconds (``answered_within``), not after minutes
        of silent retries.
        """
        self._verified_files = None  # a failed check leaves no listing behind
        try:
            if "://" in self._filepath and not answered_within(self._exists, self._filepath):
                raise self._missing()
            files = self._files.load()
            count = listed_file_count(files)
        except FruitsInputError:
            raise
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
        if count == 0:
            raise FruitsInputError(
                f"Raw image folder {self._filepath} holds no image files (.jpg, .jpeg, .png, "
                "...): put the images there, one sub-folder per class, or point "
                "raw_images_path elsewhere."
            )
        self._refuse_unlabelled_files()
        if "://" not in self._filepath:
            self._check_local_files()
        self._verified_files = files

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

    def _check_local_files(self) -> None:
        unreadable, dangling = unusable_files(
            Path(self._filepath), self._load_args.get("pathGlobFilter")
        )
        if unreadable:
            raise FruitsInputError(
                f"{len(unreadable)} image file(s) under {self._filepath} cannot be read by this "
                f"user (e.g. {unreadable[0]}): fix their permissions (chmod a+r) or move them out."
            )
        if dangling:
            logger.warning(
                "%d symbolic link(s) under %s point to nothing: rejected as empty (e.g. %s).",
                len(dangling),
                self._filepath,
                dangling[0],
            )

    def _refuse_unlabelled_files(self) -> None:
        # A file directly in the root would be labelled with the root folder's own name.
        # One listing of the root alone, on the driver: a Spark job over the whole listing
        # cost a second of every run. Same rules as the source's: its glob, hidden names.
        spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
        hadoop_fs = spark._jvm.org.apache.hadoop.fs
        root = hadoop_fs.Path(self._filepath)
        glob = self._load_args.get("pathGlobFilter")
        matches = hadoop_fs.GlobFilter(glob).accept if glob else (lambda path: True)
        for status in root.getFileSystem(spark._jsc.hadoopConfiguration()).listStatus(root):
            path = status.getPath()
            if status.isFile() and not path.getName().startswith(("_", ".")) and matches(path):
                raise FruitsInputError(
                    f"{path.toString()} is directly in the raw image folder {self._filepath}: "
                    "images must be in one sub-folder per class (named after the fruit); move "
                    "it there."
                )

    def save(self, data: None) -> None:
        """Refuse to write: the raw images are an input of the project."""
        raise DatasetError("ImageFilesDataset is read-only.")

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath, "load_args": self._load_args}


def _is_missing_path(error: BaseException | None) -> bool:
    while error is not None:
        if isinstance(error, AnalysisException) and "PATH_NOT_FOUND" in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False
