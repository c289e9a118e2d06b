"""Ingestion: the raw_images catalog entry and the image table's rows, on real files."""

import hashlib
import shutil
from pathlib import Path

import pytest
from PIL import Image

from fruits.datasets import ImageFilesDataset
from fruits.datasets.file_listing import list_files
from fruits.errors import FruitsInputError
from fruits.params import IngestionParams
from fruits.spark.image_table import describe
from tests.conftest import FRUITS_360, REPO, WEIGHTS_PARAMS
from tests.helpers import local_path, split_by_hash

APPLE = FRUITS_360 / "Training" / "Apple Braeburn"
KIWI = FRUITS_360 / "Test" / "Kiwi"

SPLITS = IngestionParams(
    split_folders=["Training", "Test"],
    unsplit_test_share=0.2,
    unsplit_train_split="Training",
    unsplit_test_split="Test",
)
IMAGE_LOAD_ARGS = {"recursiveFileLookup": True, "pathGlobFilter": "*.{[jJ][pP][gG],[pP][nN][gG]}"}


@pytest.fixture()
def odd_image_tree(tmp_path):
    """Real Fruits-360 images under the names and layouts users actually have."""
    apples = sorted(APPLE.iterdir())
    layout = {
        "Training/Apple Braeburn/a.jpg": apples[0],
        "Training/Apple Braeburn/b.JPG": apples[1],
        "Test/Kiwi/c.jpeg": sorted(KIWI.iterdir())[0],
        "Test/Pêche + plate/d.JpEg": apples[2],
        "Unsorted/Lemon/e.jpg": apples[3],
    }
    for relative, source in layout.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, tmp_path / relative)
    with Image.open(apples[4]) as image:
        (tmp_path / "Training" / "Banana").mkdir()
        image.save(tmp_path / "Training" / "Banana" / "f.PNG")
    # Not images: never ingested.
    (tmp_path / "Training" / "Apple Braeburn" / "notes.txt").write_text("not an image")
    (tmp_path / "LICENSE").write_text("MIT")
    # A hidden file (macOS's AppleDouble companion): Spark's listing skips it, so may the check.
    shutil.copy2(apples[0], tmp_path / "._a.jpg")
    return tmp_path


@pytest.fixture()
def raw_images_dataset(odd_image_tree):
    """The project's own `raw_images` catalog entry, pointed at the tree at run time."""
    from kedro.framework.session import KedroSession  # noqa: PLC0415

    params = {"raw_images_path": str(odd_image_tree), **WEIGHTS_PARAMS}
    with KedroSession.create(project_path=REPO, env="local", runtime_params=params) as session:
        return session.load_context().catalog.get("raw_images")


def test_catalog_reads_jpeg_and_png_in_any_case_recursively(
    spark, raw_images_dataset, odd_image_tree
):
    paths = {
        local_path(row.path) for row in raw_images_dataset.load().listing().select("path").collect()
    }
    assert paths == {
        odd_image_tree / name
        for name in (
            "Training/Apple Braeburn/a.jpg",
            "Training/Apple Braeburn/b.JPG",
            "Test/Kiwi/c.jpeg",
            "Test/Pêche + plate/d.JpEg",
            "Unsorted/Lemon/e.jpg",
            "Training/Banana/f.PNG",
        )
    }


def test_image_rows_have_label_split_and_hash(spark, raw_images_dataset, odd_image_tree):
    rows = describe(raw_images_dataset.load().read_all(), SPLITS).collect()
    assert [field for field in rows[0].asDict()] == [
        "path", "label", "split", "content_hash", "content", "size", "modification_time",
    ]  # fmt: skip
    by_name = {local_path(row.path).name: row for row in rows}
    assert {name: (row.label, row.split) for name, row in by_name.items()} == {
        "a.jpg": ("Apple Braeburn", "Training"),
        "b.JPG": ("Apple Braeburn", "Training"),
        "c.jpeg": ("Kiwi", "Test"),
        "d.JpEg": ("Pêche + plate", "Test"),
        # Unsorted/ is no split folder: the split comes from the bytes.
        "e.jpg": ("Lemon", split_by_hash((odd_image_tree / "Unsorted/Lemon/e.jpg").read_bytes())),
        "f.PNG": ("Banana", "Training"),
    }
    for row in rows:
        content = local_path(row.path).read_bytes()
        assert bytes(row.content) == content
        assert row.content_hash == hashlib.sha256(content).hexdigest()


def test_split_folders_are_a_parameter(spark, raw_images_dataset):
    unsorted = IngestionParams.model_validate(SPLITS.model_dump() | {"split_folders": ["Unsorted"]})
    rows = describe(raw_images_dataset.load().read_all(), unsorted).collect()
    assert {row.label: row.split for row in rows}["Lemon"] == "Unsorted"
    for row in rows:
        if row.label != "Lemon":
            assert row.split == split_by_hash(local_path(row.path).read_bytes())


def test_every_file_once_whatever_its_name_empty_ones_included(spark, tmp_path):
    """Spark's scan skips zero-byte files; its file listing does not, nor does the table."""
    source = sorted(APPLE.iterdir())[0]
    names = ["a b.jpg", "Pêche + plate.JPG", "x%20y.jpg", "100%.png", "hash#1.jpg", "empty.jpg"]
    folders = ["Training/Kiwi", "Training/Pêche + plate", "Test/A%B c"]
    for folder in folders:
        (tmp_path / folder).mkdir(parents=True)
        for name in names:
            target = tmp_path / folder / name
            target.write_bytes(b"" if name == "empty.jpg" else source.read_bytes())
    load_args = IMAGE_LOAD_ARGS
    spark_alone = spark.read.format("binaryFile").options(**load_args).load(str(tmp_path))
    assert spark_alone.count() == len(folders) * (len(names) - 1)  # skips the empty files
    raw = ImageFilesDataset(filepath=str(tmp_path), load_args=load_args).load()
    rows = describe(raw.read_all(), SPLITS).collect()
    found = {local_path(row.path): row for row in rows}
    assert len(rows) == len(found) == len(folders) * len(names)
    for folder in folders:
        for name in names:
            row = found[tmp_path / folder / name]
            assert (row.label, row.split) == tuple(reversed(folder.split("/")))
            assert row.content == (tmp_path / folder / name).read_bytes()


def test_the_listing_is_sparks_own_files_sizes_and_times(spark, tmp_path):
    """The driver's listing (no request per file) names exactly the files Spark's source
    reads, with the same Hadoop paths, sizes and modification times: what a re-run compares
    with the image table."""
    source = sorted(APPLE.iterdir())[0]
    files = [
        "Training/Kiwi/a b.jpg", "Training/Pêche + plate/x%20y.JPG", "Test/A%B c/100%.png",
        "Training/Kiwi/empty.jpg", "Training/_x=1/kept.jpg", "Training/.git/hidden.jpg",
        "Training/_tmp/hidden.jpg", "Training/Kiwi/_hidden.jpg", "Training/Kiwi/.hidden.jpg",
        "Training/Kiwi/notes.txt", "deep/er/than/usual/Kiwi/z.jpeg",
    ]  # fmt: skip
    for index, relative in enumerate(files):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        data = b"" if "empty" in relative else source.read_bytes()[: 1000 + index]
        (tmp_path / relative).write_bytes(data)
    (tmp_path / "Test" / "Linked").symlink_to(tmp_path / "Training" / "Kiwi")  # a folder link
    (tmp_path / "Test" / "A%B c" / "link.jpg").symlink_to(tmp_path / "Training/Kiwi/a b.jpg")
    listing = list_files(str(tmp_path), IMAGE_LOAD_ARGS["pathGlobFilter"])
    scan = spark.read.format("binaryFile").options(**IMAGE_LOAD_ARGS).load(str(tmp_path))
    sparks = {
        row.path: (row.length, round(row.modificationTime.timestamp() * 1000))
        for row in scan.select("path", "length", "modificationTime").collect()
    }
    ours = zip(listing.paths, listing.sizes, listing.modification_ms, strict=True)
    assert {path: (size, ms) for path, size, ms in ours if size} == sparks
    # Zero-byte files: skipped by the scan, inputs all the same (rows without bytes).
    assert listing.empty_paths() == {
        f"file:{tmp_path}/{folder}/empty.jpg" for folder in ("Training/Kiwi", "Test/Linked")
    }
    assert len(listing) == len(sparks) + 2


@pytest.fixture()
def unsplit_tree(tmp_path):
    """Real images in class folders without split folders, next to a class in split folders.

    Also the same bytes (the first Kiwi image, on the Test side of the hash rule) under two
    paths outside the split folders, and once more under Training/.
    """
    for label in ("Banana", "Kiwi", "Lemon"):
        (tmp_path / label).mkdir()
        for source in sorted((FRUITS_360 / "Training" / label).iterdir())[:10]:
            shutil.copy2(source, tmp_path / label / source.name)
    for split, count in {"Training": 6, "Test": 3}.items():
        (tmp_path / split / "Cocos").mkdir(parents=True)
        for source in sorted((FRUITS_360 / split / "Cocos").iterdir())[:count]:
            shutil.copy2(source, tmp_path / split / "Cocos" / source.name)
    duplicated = sorted((FRUITS_360 / "Training" / "Kiwi").iterdir())[0]
    shutil.copy2(duplicated, tmp_path / "Lemon" / "kiwi_copy.jpg")
    shutil.copy2(duplicated, tmp_path / "Training" / "Cocos" / "kiwi_copy.jpg")
    return tmp_path


def test_images_outside_split_folders_are_split_by_their_content_hash(spark, unsplit_tree):
    raw = ImageFilesDataset(filepath=str(unsplit_tree), load_args=IMAGE_LOAD_ARGS).load()
    rows = describe(raw.read_all(), SPLITS).collect()
    splits = {local_path(row.path).relative_to(unsplit_tree): row.split for row in rows}
    assert len(splits) == 3 * 10 + 1 + (6 + 1) + 3  # the copies included
    for relative, split in splits.items():
        if relative.parts[0] in ("Training", "Test"):  # split folders keep their split
            assert split == relative.parts[0]
        else:
            assert split == split_by_hash((unsplit_tree / relative).read_bytes())
    outside = [split for relative, split in splits.items() if len(relative.parts) == 2]
    assert set(outside) == {"Training", "Test"}  # this sample reaches both sides of the rule
    # The same bytes under two paths outside the split folders: one split, never both.
    kiwi = splits[Path("Kiwi") / sorted((FRUITS_360 / "Training" / "Kiwi").iterdir())[0].name]
    assert splits[Path("Lemon/kiwi_copy.jpg")] == kiwi == "Test"
    assert splits[Path("Training/Cocos/kiwi_copy.jpg")] == "Training"  # its folder wins


def test_the_hash_split_gives_the_test_share_and_the_configured_names(spark):
    """All 4,750 Fruits-360 images as one unsplit folder (no split folder named)."""
    raw = (
        ImageFilesDataset(filepath=str(FRUITS_360), load_args=IMAGE_LOAD_ARGS)
        .load()
        .read_all()
        .cache()
    )
    try:
        n_images = raw.count()
        assert n_images == 4750
        for share in (0.1, 0.2, 0.5):
            params = IngestionParams.model_validate(
                {"split_folders": [], "unsplit_test_share": share,
                 "unsplit_train_split": "fit", "unsplit_test_split": "score"}
            )  # fmt: skip
            counts = dict(describe(raw, params).groupBy("split").count().collect())
            assert set(counts) == {"fit", "score"}
            assert counts["score"] / n_images == pytest.approx(share, abs=0.02)
    finally:
        raw.unpersist()


def test_the_odd_tree_passes_the_input_check(spark, raw_images_dataset):
    raw_images_dataset.verify()


def test_an_image_outside_class_folders_is_refused_by_name(spark, odd_image_tree):
    """It would be labelled with the raw folder's own name: refused before any node runs."""
    loose = odd_image_tree / "IMG 0001.jpg"
    shutil.copy2(sorted(APPLE.iterdir())[5], loose)
    dataset = ImageFilesDataset(filepath=str(odd_image_tree), load_args=IMAGE_LOAD_ARGS)
    with pytest.raises(FruitsInputError, match=r"IMG 0001.jpg is directly in the raw image"):
        dataset.verify()


def test_a_storage_spark_cannot_read_is_one_line(spark):
    """s3a:// in the local environment (no S3A jars): one line, not a Java trace."""
    dataset = ImageFilesDataset(filepath="s3a://fruits-eu-data/raw", load_args=IMAGE_LOAD_ARGS)
    with pytest.raises(FruitsInputError, match=r"This Spark cannot read s3a:// paths"):
        dataset.verify()


def test_a_storage_fsspec_cannot_list_is_one_line(spark, odd_image_tree, monkeypatch):
    """The listing goes through fsspec: a missing implementation (gcsfs...) is one line."""
    from fruits.datasets import image_files  # noqa: PLC0415

    def no_implementation(*args):
        raise ImportError("gcsfs not installed. Install with:\n  pip install gcsfs")

    monkeypatch.setattr(image_files, "list_files", no_implementation)
    dataset = ImageFilesDataset(filepath=str(odd_image_tree), load_args=IMAGE_LOAD_ARGS)
    with pytest.raises(
        FruitsInputError, match=r"cannot be listed: gcsfs not installed\. Install with:"
    ) as raised:
        dataset.verify()
    assert "\n" not in str(raised.value)


def test_unreadable_files_stop_the_run_before_spark_reads_them(spark, odd_image_tree, monkeypatch):
    """Wiring of the local check (which tests/test_local_files.py runs as another user)."""
    from fruits.datasets import image_files  # noqa: PLC0415

    blocked = str(odd_image_tree / "Test" / "Kiwi" / "c.jpeg")

    def listing_with_a_blocked_file(*args):
        listing = list_files(*args)
        listing.unreadable.append(blocked)
        return listing

    monkeypatch.setattr(image_files, "list_files", listing_with_a_blocked_file)
    dataset = ImageFilesDataset(filepath=str(odd_image_tree), load_args=IMAGE_LOAD_ARGS)
    with pytest.raises(FruitsInputError, match=r"1 image file\(s\) under .* cannot be read"):
        dataset.verify()


def test_a_dangling_link_is_named_in_the_log_and_counted_as_an_input(spark, odd_image_tree, caplog):
    """Spark's listing drops it; the user meant it as an image: a row without bytes."""
    dataset = ImageFilesDataset(filepath=str(odd_image_tree), load_args=IMAGE_LOAD_ARGS)
    before = {local_path(row.path) for row in dataset.load().listing().select("path").collect()}
    link = odd_image_tree / "Test" / "Kiwi" / "gone.jpg"
    link.symlink_to(odd_image_tree / "nowhere.jpg")
    dataset.verify()
    assert "1 symbolic link(s)" in caplog.text and "gone.jpg" in caplog.text
    rows = {local_path(row.path): row.content for row in dataset.load().read_all().collect()}
    assert set(rows) == before | {link} and rows[link] == bytearray()


def test_a_run_lists_the_raw_folder_once(spark, odd_image_tree):
    """The input check's listing is the one the run's nodes read; a new check lists again."""
    dataset = ImageFilesDataset(filepath=str(odd_image_tree), load_args=IMAGE_LOAD_ARGS)
    dataset.verify()
    added = odd_image_tree / "Test" / "Kiwi" / "added after the check.jpg"
    shutil.copy2(sorted(APPLE.iterdir())[5], added)
    for _ in range(2):
        assert added not in {local_path(row.path) for row in dataset.load().listing().collect()}
    dataset.verify()
    assert added in {local_path(row.path) for row in dataset.load().listing().collect()}
