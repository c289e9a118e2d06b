"""Ingestion: the raw_images catalog entry and the build_image_table node on real files."""

import hashlib
import shutil

import pytest
from PIL import Image

from fruits.datasets import ImageFilesDataset
from fruits.params import IngestionParams
from fruits.pipelines.ingestion.nodes import build_image_table
from tests.conftest import FRUITS_360, REPO, WEIGHTS_PARAMS
from tests.helpers import local_path

APPLE = FRUITS_360 / "Training" / "Apple Braeburn"
KIWI = FRUITS_360 / "Test" / "Kiwi"

SPLITS = IngestionParams(split_folders=["Training", "Test"])


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
    paths = {local_path(row.path) for row in raw_images_dataset.load().select("path").collect()}
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


def test_build_image_table_derives_label_split_and_hash(spark, raw_images_dataset):
    rows = build_image_table(raw_images_dataset.load(), SPLITS).collect()
    assert [field for field in rows[0].asDict()] == [
        "path", "label", "split", "content_hash", "content",
    ]  # fmt: skip
    by_name = {local_path(row.path).name: row for row in rows}
    assert {name: (row.label, row.split) for name, row in by_name.items()} == {
        "a.jpg": ("Apple Braeburn", "Training"),
        "b.JPG": ("Apple Braeburn", "Training"),
        "c.jpeg": ("Kiwi", "Test"),
        "d.JpEg": ("Pêche + plate", "Test"),
        "e.jpg": ("Lemon", None),
        "f.PNG": ("Banana", "Training"),
    }
    for row in rows:
        content = local_path(row.path).read_bytes()
        assert bytes(row.content) == content
        assert row.content_hash == hashlib.sha256(content).hexdigest()


def test_split_folders_are_a_parameter(spark, raw_images_dataset):
    unsorted = IngestionParams(split_folders=["Unsorted"])
    rows = build_image_table(raw_images_dataset.load(), unsorted).collect()
    assert {row.label: row.split for row in rows}["Lemon"] == "Unsorted"
    assert {row.split for row in rows} == {"Unsorted", None}


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
    load_args = {"recursiveFileLookup": True, "pathGlobFilter": "*.{[jJ][pP][gG],[pP][nN][gG]}"}
    spark_alone = spark.read.format("binaryFile").options(**load_args).load(str(tmp_path))
    assert spark_alone.count() == len(folders) * (len(names) - 1)  # skips the empty files
    raw = ImageFilesDataset(filepath=str(tmp_path), load_args=load_args).load()
    rows = build_image_table(raw, SPLITS).collect()
    found = {local_path(row.path): row for row in rows}
    assert len(rows) == len(found) == len(folders) * len(names)
    for folder in folders:
        for name in names:
            row = found[tmp_path / folder / name]
            assert (row.label, row.split) == tuple(reversed(folder.split("/")))
            assert row.content == (tmp_path / folder / name).read_bytes()
