"""Local raw folders: unreadable files and dangling links found before Spark reads them."""

import os
import pickle
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml

from fruits.datasets.local_files import glob_regex, unusable_files
from tests.conftest import FRUITS_360, REPO

CATALOG_GLOB = yaml.safe_load((REPO / "conf" / "base" / "catalog.yml").read_text())["raw_images"][
    "load_args"
]["pathGlobFilter"]
KIWI = sorted((FRUITS_360 / "Training" / "Kiwi").iterdir())


@pytest.mark.parametrize(
    ("name", "matches"),
    [("a.jpg", True), ("B.JPG", True), ("c.JpEg", True), ("d.png", True), ("e.heic", True),
     ("f.TIFF", True), ("notes.txt", False), ("a.jpg.txt", False), ("jpg", False)],
)  # fmt: skip
def test_the_catalogs_glob_as_spark_reads_it(name, matches):
    assert bool(glob_regex(CATALOG_GLOB).fullmatch(name)) is matches


def test_a_dangling_link_is_found(tmp_path):
    (tmp_path / "Kiwi").mkdir()
    shutil.copy2(KIWI[0], tmp_path / "Kiwi" / "a.jpg")
    (tmp_path / "Kiwi" / "b.jpg").symlink_to(tmp_path / "gone.jpg")
    (tmp_path / "Kiwi" / "c.jpg").symlink_to(tmp_path / "Kiwi" / "a.jpg")  # a good link
    assert unusable_files(tmp_path, CATALOG_GLOB) == ([], [tmp_path / "Kiwi" / "b.jpg"])


@pytest.fixture
def shared_folder():
    """A folder every user can traverse (pytest's own tmp folders are private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="fruits-perm-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


def as_another_user(function, *args):
    """``function(*args)`` in a forked child that dropped to user nobody (root reads all)."""
    if os.geteuid() != 0:
        return function(*args)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the child: never returns into pytest
        try:
            os.setgid(65534)
            os.setuid(65534)
            os.write(write, pickle.dumps(function(*args)))
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as answer:
        result = answer.read()
    os.waitpid(child, 0)
    return pickle.loads(result)


def test_a_file_this_user_cannot_read_is_found(shared_folder):
    (shared_folder / "Kiwi").mkdir(mode=0o755)
    for name in ("a.jpg", "b.jpg", "notes.txt"):
        shutil.copy2(KIWI[0], shared_folder / "Kiwi" / name)
        (shared_folder / "Kiwi" / name).chmod(0o644)
    (shared_folder / "Kiwi" / "b.jpg").chmod(0o000)
    (shared_folder / "Kiwi" / "notes.txt").chmod(0o000)  # not an image: not Spark's to read
    unreadable, dangling = as_another_user(unusable_files, shared_folder, CATALOG_GLOB)
    assert (unreadable, dangling) == ([shared_folder / "Kiwi" / "b.jpg"], [])
