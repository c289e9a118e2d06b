"""A folder's files as Spark's ``binaryFile`` source sees them, listed on the driver.

Spark's file source lists a folder, then its reader asks the storage for every file's
status again, even when only path, length and time are selected: a ``stat`` per file
locally, an S3 HEAD request per file in the cloud (a million requests at a million
images). A run that only compares the listing with the image table needs neither: here a
local folder is one walk, and an object store one LIST request per 1,000 keys (fsspec's
``find``), with Spark's rules for which files a recursive lookup reads (hidden names,
``pathGlobFilter``), its path strings (Hadoop paths: ``file:/a/b c.jpg``,
``s3a://bucket/a/b c.jpg``) and its modification times (milliseconds; whole seconds on
object stores, whose LIST and HEAD answers both carry seconds).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fruits.datasets.filesystems import filesystem


def spark_hidden(name: str) -> bool:
    """Names Spark's file listing skips, files and folders (InMemoryFileIndex's rule)."""
    return (
        (name.startswith("_") and "=" not in name)
        or name.startswith(".")
        or name.endswith("._COPYING_")
    )


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A Hadoop glob of file names (``*.{[jJ][pP][gG],png}``) as a regular expression."""
    out, depth = [], 0
    for char in pattern:
        if char == "{":
            depth += 1
            out.append("(?:")
        elif char == "}" and depth:
            depth -= 1
            out.append(")")
        elif char == "," and depth:
            out.append("|")
        elif char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char in "[]^-":
            out.append(char)
        else:
            out.append(re.escape(char))
    return re.compile("".join(out))


@dataclass(frozen=True)
class FileListing:
    """The files of a folder: parallel lists, one entry per file, sorted by path.

    ``modification_ms`` is None for the files without bytes (zero-byte files, which
    Spark's scan skips, and local symbolic links to nothing), as the rows read for them.
    """

    root: str
    paths: list[str] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    modification_ms: list[int | None] = field(default_factory=list)
    # Local folders only: what Spark's listing cannot tell (found by the same walk).
    unreadable: list[str] = field(default_factory=list)
    dangling: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.paths)

    def empty_paths(self) -> frozenset[str]:
        """Paths of the files without bytes to read."""
        return frozenset(p for p, size in zip(self.paths, self.sizes, strict=True) if not size)

    def files_in_root(self) -> list[str]:
        """Paths of the files directly in the root folder (not in a sub-folder)."""
        prefix = len(self.root) + 1
        return [path for path in self.paths if "/" not in path[prefix:]]


def list_files(
    uri: str, name_glob: str | None = None, fs_args: dict[str, Any] | None = None
) -> FileListing:
    """Every file under ``uri`` (recursively) that Spark's ``binaryFile`` source with
    ``recursiveFileLookup`` and ``pathGlobFilter=name_glob`` would read.

    Args:
        uri: A local folder (absolute) or a Spark URI (``s3a://``, ``abfss://``...).
        name_glob: Hadoop glob on file names; None lists every file.
        fs_args: fsspec arguments for the object store (the catalog's ``fs_args``).
    """
    matches = glob_regex(name_glob).fullmatch if name_glob else (lambda name: True)
    if "://" not in uri or uri.startswith("file:"):
        return _list_local(Path(uri.removeprefix("file://").removeprefix("file:")), matches)
    return _list_remote(uri.rstrip("/"), matches, fs_args)


def _list_local(root: Path, matches: Callable[[str], Any]) -> FileListing:
    listing = FileListing(root=f"file:{root}")
    found = []
    # Hadoop's local file system follows links to folders, and drops links to nothing.
    for folder, folders, names in os.walk(root, followlinks=True):
        folders[:] = [name for name in folders if not spark_hidden(name)]
        for name in names:
            if spark_hidden(name) or not matches(name):
                continue
            path = os.path.join(folder, name)
            try:
                status = os.stat(path)
            except FileNotFoundError:
                if os.path.islink(path):
                    listing.dangling.append(path)
                    found.append((path, 0, None))
                continue  # deleted since the walk saw it
            if not os.access(path, os.R_OK):
                listing.unreadable.append(path)
            size = status.st_size
            # java.io.File.lastModified: milliseconds, truncated.
            found.append((path, size, status.st_mtime_ns // 1_000_000 if size else None))
    found.sort()
    for path, size, modified in found:
        listing.paths.append(f"file:{path}")
        listing.sizes.append(size)
        listing.modification_ms.append(modified)
    listing.unreadable.sort()
    listing.dangling.sort()
    return listing


def _list_remote(
    uri: str, matches: Callable[[str], Any], fs_args: dict[str, Any] | None
) -> FileListing:
    fs, _ = filesystem(uri, fs_args)
    root = fs._strip_protocol(uri).rstrip("/")
    fs.invalidate_cache(root)  # fsspec instances (and their listings) live as long as the process
    listing = FileListing(root=uri)
    for key, info in sorted(fs.find(root, detail=True).items()):
        relative = key[len(root) + 1 :]
        parts = relative.split("/")
        if info.get("type") == "directory" or any(spark_hidden(part) for part in parts):
            continue
        if not matches(parts[-1]):
            continue
        size = int(info["size"])
        modified = info.get("LastModified") or info.get("last_modified")
        listing.paths.append(f"{uri}/{relative}")
        listing.sizes.append(size)
        listing.modification_ms.append(round(modified.timestamp() * 1000) if size else None)
    return listing
