"""The raw folder's listing on the driver: Spark's glob, and, in a local folder, unreadable
files and dangling links found before Spark reads them."""

import os
import pickle
import shutil
import tempfile
from pathlib import Path

import pytest

from fruits.datasets.file_listing import glob_regex, list_files
from tests.conftest import FRUITS_360, IMAGE_GLOB

KIWI = sorted((FRUITS_360 / "Training" / "Kiwi").iterdir())


@pytest.mark.parametrize(
    ("name", "matches"),
    [("a.jpg", True), ("B.JPG", True), ("c.JpEg", True), ("d.png", True), ("e.heic", True),
     ("f.TIFF", True), ("notes.txt", False), ("a.jpg.txt", False), ("jpg", False)],
)  # fmt: skip
def test_the_catalogs_glob_as_spark_reads_it(name, matches):
    assert bool(glob_regex(IMAGE_GLOB).fullmatch(name)) is matches


def test_a_dangling_link_is_found(tmp_path):
    (tmp_path / "Kiwi").mkdir()
    shutil.copy2(KIWI[0], tmp_path / "Kiwi" / "a.jpg")
    (tmp_path / "Kiwi" / "b.jpg").symlink_to(tmp_path / "gone.jpg")
    (tmp_path / "Kiwi" / "c.jpg").symlink_to(tmp_path / "Kiwi" / "a.jpg")  # a good link
    listing = list_files(str(tmp_path), IMAGE_GLOB)
    assert (listing.unreadable, listing.dangling) == ([], [str(tmp_path / "Kiwi" / "b.jpg")])
    # Listed (an input, without bytes), as the good link is (with its target's bytes).
    assert dict(zip(listing.paths, listing.sizes, strict=True)) == {
        f"file:{tmp_path}/Kiwi/{name}": size
        for name, size in [
            ("a.jpg", KIWI[0].stat().st_size),
            ("b.jpg", 0),
            ("c.jpg", KIWI[0].stat().st_size),
        ]
    }


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
    listing = as_another_user(list_files, str(shared_folder), IMAGE_GLOB)
    assert (listing.unreadable, listing.dangling) == ([str(shared_folder / "Kiwi" / "b.jpg")], [])


def test_an_object_store_is_listed_with_sparks_rules_and_again_each_time(s3_server):
    """LIST requests, Spark's rules and paths; a second listing in the same process (the
    input check, then a later run) sees what was added in between."""
    s3, bucket = s3_server.client(), "fruits-listing"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-3"})
    for key, body in [
        ("raw/Kiwi/a.jpg", b"a"), ("raw/Kiwi/empty.jpg", b""), ("raw/Kiwi/notes.txt", b"n"),
        ("raw/_tmp/b.jpg", b"b"), ("raw/Kiwi/.c.jpg", b"c"),
    ]:  # fmt: skip
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    first = list_files(f"s3a://{bucket}/raw", IMAGE_GLOB)
    assert first.paths == [f"s3a://{bucket}/raw/Kiwi/a.jpg", f"s3a://{bucket}/raw/Kiwi/empty.jpg"]
    assert first.sizes == [1, 0] and first.modification_ms[1] is None
    assert first.modification_ms[0] % 1000 == 0  # whole seconds, as S3A's HEAD gives them
    s3.put_object(Bucket=bucket, Key="raw/Kiwi/d e.jpg", Body=b"de")
    assert f"s3a://{bucket}/raw/Kiwi/d e.jpg" in list_files(f"s3a://{bucket}/raw", IMAGE_GLOB).paths
