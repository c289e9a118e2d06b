"""What Spark's listing of a local folder cannot tell: files this user cannot read, and
symbolic links to nothing.

Spark's ``binaryFile`` source lists a dangling link as nothing at all, and fails the whole
job (a thousand-line trace) on a file it may not read. On a local folder both are found
in milliseconds from Python, before the run.
"""

from __future__ import annotations

import os
import re
from pathlib import Path


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


def unusable_files(root: Path, name_pattern: str | None) -> tuple[list[Path], list[Path]]:
    """Files under ``root`` whose names match ``name_pattern`` (all files if None) that
    this process cannot read, and symbolic links whose target does not exist."""
    matches = glob_regex(name_pattern).fullmatch if name_pattern else (lambda name: True)
    unreadable, dangling = [], []
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder, name)
            if not matches(name):
                continue
            if path.is_symlink() and not path.exists():
                dangling.append(path)
            elif not os.access(path, os.R_OK):
                unreadable.append(path)
    return sorted(unreadable), sorted(dangling)
