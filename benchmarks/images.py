"""Which image files a row reads: the files the catalog's ``raw_images`` entry reads.

The hand-written rows (plain Keras, the counts of images per second) need the file
list in Python; it is made with the catalog entry's own filter (``pathGlobFilter``,
recursive lookup) and Spark's rule for hidden files, so every row reads the same files.
"""

from __future__ import annotations

import os
import re
import shutil
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from fruits.datasets.file_listing import glob_regex, spark_hidden


@dataclass(frozen=True)
class ImageFilter:
    """The file selection of the catalog's ``raw_images`` entry (its ``load_args``)."""

    load_args: Mapping[str, Any]

    @classmethod
    def from_catalog_entry(cls, entry: Mapping[str, Any]) -> ImageFilter:
        load_args = dict(entry.get("load_args") or {})
        if not load_args.get("recursiveFileLookup"):
            raise ValueError(
                "The catalog's raw_images no longer looks up files recursively: update "
                "benchmarks/images.py, which lists the same files in Python."
            )
        return cls(load_args)

    @cached_property
    def _name_pattern(self) -> re.Pattern[str]:
        return glob_regex(self.load_args.get("pathGlobFilter", "*"))

    def matches(self, path: Path, root: Path) -> bool:
        """Whether Spark, listing ``root`` with these options, reads ``path``."""
        if any(spark_hidden(part) for part in path.relative_to(root).parts):
            return False
        return self._name_pattern.fullmatch(path.name) is not None


@dataclass(frozen=True)
class RawImages:
    """Image folders given to the pipeline as ``raw_images_path``, and their files."""

    roots: tuple[Path, ...]
    files: tuple[Path, ...]

    @classmethod
    def listed(
        cls, roots: Iterable[Path], image_filter: ImageFilter, limit: int | None = None
    ) -> RawImages:
        """Every image file under the roots (sorted), optionally only the first ``limit``."""
        roots = tuple(roots)
        files = sorted(
            path
            for root in roots
            for path in root.rglob("*")
            if path.is_file() and image_filter.matches(path, root)
        )
        return cls(roots, tuple(files[:limit] if limit else files))

    @property
    def count(self) -> int:
        return len(self.files)

    @property
    def path(self) -> str:
        """``raw_images_path``: the folder, or a Hadoop glob naming every root."""
        if len(self.roots) == 1:
            return str(self.roots[0])
        parent = Path(os.path.commonpath(self.roots))
        names = [str(root.relative_to(parent)) for root in self.roots]
        if any(character in name for name in names for character in "{},*?[]"):
            raise ValueError(f"Cannot name {names} in one Hadoop glob: rename the folders.")
        return f"{parent}/{{{','.join(names)}}}"

    def copy(self, files: Iterable[Path], target: Path) -> RawImages:
        """Copy some of the files to ``target``, keeping their Split/Class/ layout."""
        copied = []
        for source in files:
            root = next(r for r in self.roots if source.is_relative_to(r))
            destination = target / source.relative_to(root)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)
            copied.append(destination)
        return RawImages((target,), tuple(sorted(copied)))

    def first(self, limit: int, target: Path) -> RawImages:
        """The first ``limit`` files, copied to ``target`` (Spark then reads exactly them)."""
        return self.copy(self.files[:limit], target)

    def per_class(self, classes: int, per_folder: int, target: Path) -> RawImages:
        """The first ``per_folder`` files of each folder of the first ``classes`` classes.

        A class's folder under each split (Training/, Test/) contributes: both splits
        stay, so the classifier still trains and scores. Copied to ``target``.
        """
        folders: dict[Path, list[Path]] = defaultdict(list)
        for path in self.files:
            folders[path.parent].append(path)
        kept = sorted({folder.name for folder in folders})[:classes]
        chosen = [
            path
            for folder, paths in sorted(folders.items())
            if folder.name in kept
            for path in paths[:per_folder]
        ]
        return self.copy(chosen, target)

    def combined(self, other: RawImages) -> RawImages:
        """Both sets as one ``raw_images_path`` (a glob of their roots)."""
        return RawImages(self.roots + other.roots, tuple(sorted(self.files + other.files)))

    def first_folder(self, target: Path) -> RawImages:
        """The files of the first file's class folder, copied to ``target`` with their
        Split/Class/ layout (the warm-up's input: a class folder on its own would be
        refused, its images would have no class folder)."""
        folder = self.files[0].parent
        return self.copy([path for path in self.files if path.parent == folder], target)
