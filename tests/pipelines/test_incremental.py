"""Real runs over changing folders: bad files quarantined, new contents only, crash safety,
one writer at a time, earlier runs read back."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fsspec.implementations.local import LocalFileSystem

from fruits.spark import delta
from tests import bad_images
from tests.conftest import FRUITS_360, REPO, WEIGHTS_PARAMS, copy_real_images, run_project
from tests.helpers import delta_files, local_path, read_delta

FEATURES_ONLY = ["ingestion", "featurization", "reduction"]
CLASSES = ["Apple Braeburn", "Banana", "Kiwi", "Lemon"]

pytestmark = pytest.mark.pipeline


def run(raw: Path, data: Path, **params) -> dict:
    """One run of ingestion, featurization and reduction; returns the featurization report."""
    run_project(
        pipelines=FEATURES_ONLY,
        raw_images_path=str(raw),
        data_root=str(data),
        **WEIGHTS_PARAMS,
        **params,
    )
    return json.loads((data / "08_reporting" / "featurization_report.json").read_text())


IMAGES = "02_intermediate/images"
STORE = "04_feature/image_feature_store"
PCA_FEATURES = "05_model_input/pca_features"
# Views of the image table and the store (nothing written), read like the tables.
REJECTED = "02_intermediate/rejected_images"
FEATURES = "04_feature/image_features"


def table(data: Path, relative: str, version: int | None = None) -> pd.DataFrame:
    """A Delta table (or view) of the run's outputs (its latest version), sorted by path, with
    ``file``."""
    frame = read_delta(data / relative, version)
    frame["file"] = [local_path(uri) for uri in frame["path"]]
    return frame.sort_values("path").reset_index(drop=True)


def features_by_file(data: Path) -> dict[Path, np.ndarray]:
    frame = table(data, FEATURES)
    return dict(zip(frame["file"], map(np.asarray, frame["features"]), strict=True))


def version(data: Path, relative: str) -> int:
    return max(int(p.stem) for p in (data / relative / "_delta_log").glob("*.json"))


def test_bad_files_are_quarantined_and_the_rest_featurized(tmp_path):
    raw, data = tmp_path / "raw", tmp_path / "data"
    good = copy_real_images(raw, CLASSES, {"Training": 3})
    odd_folder = raw / "Training" / "Kiwi"
    accepted = [make(odd_folder) for make in bad_images.ACCEPTED]
    rejected = {make(odd_folder): reason for make, reason in bad_images.REJECTED.items()}
    # A link whose target moved: an input the user meant, counted and rejected.
    (dangling := odd_folder / "moved.jpg").symlink_to(raw / "moved-away.jpg")
    rejected[dangling] = "a link to nothing"
    (odd_folder / "notes.txt").write_text("not an image file: not an input")

    report = run(raw, data)

    files = len(good) + len(accepted) + len(rejected)
    assert (report["image_files"], report["accepted"], report["rejected"]) == (
        files, len(good) + len(accepted), len(rejected)
    )  # fmt: skip
    quarantined = table(data, REJECTED)
    assert report["rejection_reasons"] == quarantined["reason"].value_counts().to_dict()
    assert sorted(quarantined["file"]) == sorted(rejected)
    for file, reason in zip(quarantined["file"], quarantined["reason"], strict=True):
        assert rejected[file] in reason
    assert set(quarantined["label"]) == {"Kiwi"} and set(quarantined["split"]) == {"Training"}
    features = features_by_file(data)
    assert sorted(features) == sorted(good + accepted)
    assert all(v.shape == (1280,) and np.isfinite(v).all() for v in features.values())
    # Turned upright by its EXIF tag, the rotated photo looks like the original to the CNN.
    original = odd_folder / bad_images.SOURCE.name  # copied from the same Kiwi folder
    assert original in good
    rotated = features[odd_folder / "rotated.jpg"]
    cosine = (
        rotated @ features[original] / np.linalg.norm(rotated) / np.linalg.norm(features[original])
    )
    assert cosine > 0.95
    assert len(table(data, PCA_FEATURES)) == len(features)


def run_watched(raw: Path, data: Path, monkeypatch) -> tuple[dict, list[int], list[str]]:
    """``run``, noting the CNN's input sizes and the tables whose changes' keys were looked up."""
    from fruits.spark import feature_store  # noqa: PLC0415

    calls, looked_up = [], []
    real, lookup = feature_store.featurize_images, delta.count_held
    with monkeypatch.context() as patch:
        # Counted when called: a Delta read is resolved when it runs, and after the run
        # the store holds these contents.
        spy = lambda *a, **k: calls.append(a[0].count()) or real(*a, **k)  # noqa: E731
        patch.setattr(feature_store, "featurize_images", spy)
        # Named by the folder of the table's files (each table has some after a first run).
        table_name = lambda frame: Path(frame.inputFiles()[0]).parent.name  # noqa: E731
        patch.setattr(
            delta, "count_held", lambda *a: looked_up.append(table_name(a[1])) or lookup(*a)
        )
        return run(raw, data), calls, looked_up


def test_runs_only_pay_for_new_contents(tmp_path, monkeypatch):
    raw, data = tmp_path / "raw", tmp_path / "data"
    images = copy_real_images(raw, CLASSES, {"Training": 5})

    first = run(raw, data)
    assert (first["contents_new"], first["contents_reused"], first["image_files"]) == (20, 0, 20)
    first_features = table(data, FEATURES)
    first_pca = table(data, PCA_FEATURES)
    first_variance = (data / "08_reporting" / "explained_variance.json").read_text()

    # Unchanged input: the CNN must not run at all, and every output stays the same.
    from fruits.spark import feature_store  # noqa: PLC0415

    def no_inference(*args, **kwargs):
        raise AssertionError("the CNN ran on unchanged input")

    with monkeypatch.context() as patch:
        patch.setattr(feature_store, "featurize_images", no_inference)
        again = run(raw, data)
    assert (again["contents_new"], again["contents_reused"], again["contents_removed"]) == (
        0, 20, 0
    )  # fmt: skip
    # No file read, no commit: every table is the version the first run wrote.
    assert (again["files_read"], again["raw_bytes_read"]) == (0, 0)
    assert first["raw_bytes_read"] == sum(path.stat().st_size for path in images)
    for name in ("images", "image_feature_store"):
        assert again["tables"][name]["written"] == []
        assert again["tables"][name]["read"] == first["tables"][name]["written"][-1]
    pd.testing.assert_frame_equal(table(data, FEATURES), first_features)
    pd.testing.assert_frame_equal(table(data, PCA_FEATURES), first_pca)
    assert (data / "08_reporting" / "explained_variance.json").read_text() == first_variance

    # Two new images, and the same bytes as an existing image under a second path.
    new = copy_real_images(raw, ["Pear"], {"Training": 2})
    duplicate = raw / "Training" / "Kiwi" / "same bytes, other name.jpg"
    shutil.copy2(images[0], duplicate)
    added, calls, looked_up = run_watched(raw, data, monkeypatch)
    assert calls == [2]  # inference on exactly the 2 new contents
    # Every table's changes were counted by their maker (the image table from its listing,
    # the store from its counts, the PCA features by the refit check): none looked up.
    assert looked_up == []
    assert (added["contents_new"], added["contents_reused"], added["image_files"]) == (2, 20, 23)
    # Only the 3 new files were read.
    assert added["files_read"] == 3
    assert added["raw_bytes_read"] == sum(p.stat().st_size for p in [*new, duplicate])
    features = features_by_file(data)
    assert sorted(features) == sorted(images + new + [duplicate])
    np.testing.assert_array_equal(features[duplicate], features[images[0]])
    before = dict(zip(first_features["file"], first_features["features"], strict=True))
    np.testing.assert_array_equal(features[images[1]], before[images[1]])  # reused as they were

    # A deleted image disappears everywhere; its content leaves the store.
    images[5].unlink()
    removed = run(raw, data)
    assert (removed["contents_new"], removed["contents_removed"], removed["image_files"]) == (
        0, 1, 22
    )  # fmt: skip
    assert images[5] not in features_by_file(data)
    assert images[5] not in set(table(data, PCA_FEATURES)["file"])
    assert images[5] not in set(table(data, IMAGES)["file"])
    assert (removed["files_read"], removed["files_removed"]) == (0, 1)

    check_a_file_replaced_in_place(raw, data, images[6], before[images[6]])


def check_a_file_replaced_in_place(raw: Path, data: Path, replaced: Path, features) -> None:
    """Same path, new bytes: read again, featurized again; the old content leaves the store."""
    shutil.copy2(sorted((FRUITS_360 / "Training" / "Lemon").iterdir())[-1], replaced)
    old_hash = table(data, IMAGES).set_index("file").loc[replaced, "content_hash"]
    changed = run(raw, data)
    assert (changed["files_read"], changed["contents_new"], changed["contents_removed"]) == (
        1, 1, 1
    )  # fmt: skip
    now = table(data, IMAGES).set_index("file")
    assert now.loc[replaced, "content_hash"] != old_hash
    assert now.loc[replaced, "size"] == replaced.stat().st_size
    assert old_hash not in set(read_delta(data / STORE)["content_hash"])
    assert not np.array_equal(features_by_file(data)[replaced], features)
    # Each image once in every table, each distinct content once in the store.
    for name in (IMAGES, FEATURES, PCA_FEATURES):
        assert table(data, name)["path"].is_unique
    assert read_delta(data / STORE)["content_hash"].is_unique


def test_a_run_killed_during_the_merge_loses_nothing(tmp_path):
    """SIGKILL once the store's MERGE writes its files, then a normal run: each image once."""
    raw, data = tmp_path / "raw", tmp_path / "data"
    keras = {
        "featurization.runtime": "keras",  # slower: a wider window to kill the run in
        "featurization.images_per_partition": 4,
        "featurization.batch_size": 4,
    }
    first_images = copy_real_images(raw, CLASSES, {"Training": 3})
    run(raw, data, **keras)
    store = data / STORE
    before = version(data, STORE)
    committed = {Path(path).name for path in delta_files(LocalFileSystem(), str(store))}
    published = table(data, FEATURES)
    more_images = copy_real_images(raw, ["Pear", "Plum", "Orange", "Mango"], {"Training": 10})

    params = {"raw_images_path": raw, "data_root": data, **WEIGHTS_PARAMS, **keras}
    command = [
        str(Path(sys.executable).with_name("kedro")), "run", "--env", "local",
        "--pipelines", ",".join(FEATURES_ONLY),
        "--params", ",".join(f"{key}={value}" for key, value in params.items()),
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=REPO, start_new_session=True, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        # A new data file in the store: the MERGE is writing, its commit not yet made.
        while not {path.name for path in store.glob("*.parquet")} - committed:
            assert process.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "the store's MERGE never started"
            time.sleep(0.01)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    # Nothing half-written is visible: the store and the published table are the last run's.
    assert version(data, STORE) == before
    assert {Path(path).name for path in delta_files(LocalFileSystem(), str(store))} == committed
    pd.testing.assert_frame_equal(table(data, FEATURES), published)

    # The killed run's lock is stale (its process is gone): the next run takes it over.
    report = run(raw, data, **keras)
    assert (report["contents_new"], report["contents_reused"]) == (40, 12)
    features = table(data, FEATURES)
    assert sorted(features["file"]) == sorted(first_images + more_images)  # each exactly once
    assert features["content_hash"].is_unique
    assert not (data / ".fruits-run.lock").exists()


def test_same_bytes_twice_are_embedded_once(tmp_path):
    raw, data = tmp_path / "raw", tmp_path / "data"
    image = sorted((FRUITS_360 / "Training" / "Banana").iterdir())[0]
    for folder in ("Training/Banana", "Training/Banana copy", "Test/Banana"):
        (raw / folder).mkdir(parents=True)
        shutil.copy2(image, raw / folder / image.name)
    copy_real_images(raw, ["Apple Braeburn", "Kiwi", "Lemon"], {"Training": 2})
    report = run(raw, data, **{"reduction.k": 2})
    assert (report["image_files"], report["distinct_contents"], report["contents_new"]) == (
        9, 7, 7
    )  # fmt: skip
    features = table(data, FEATURES)
    placed = {
        raw / folder / image.name
        for folder in ("Training/Banana", "Training/Banana copy", "Test/Banana")
    }
    copies = features[features["file"].isin(placed)]
    assert len(copies) == 3 and copies["content_hash"].nunique() == 1
    assert set(copies["label"]) == {"Banana", "Banana copy"}


def test_rerun_of_the_whole_pipeline_changes_no_output(tmp_path, monkeypatch):
    """Default pipeline twice on the same files: no refit, no evaluation, no figure drawn;
    identical tables, reports, models, and figure files left untouched."""
    from fruits import figures  # noqa: PLC0415
    from fruits.ml import classifier, pca  # noqa: PLC0415
    from fruits.ml.local_models import LocalPipelineModel  # noqa: PLC0415

    raw, data = tmp_path / "raw", tmp_path / "data"
    copy_real_images(raw, CLASSES, {"Training": 6, "Test": 2})

    def outputs() -> dict:
        reports = {p.name: p.read_text() for p in (data / "08_reporting").glob("*.json")}
        pngs = {
            p.name: (p.stat().st_mtime_ns, p.read_bytes())
            for p in (data / "08_reporting").glob("*.png")
        }
        tables = {name: table(data, name).drop(columns="file") for name in (FEATURES, PCA_FEATURES)}
        models = {
            name: [s.data for s in LocalPipelineModel(str(data / "06_models" / name)).stages]
            for name in ("pca_model", "fruit_classifier")
        }
        return {"reports": reports, "figures": pngs, "tables": tables, "models": models}

    run_project(raw_images_path=str(raw), data_root=str(data), **WEIGHTS_PARAMS)
    first = outputs()
    assert {"classification_metrics.json", "explained_variance.json"} <= set(first["reports"])
    assert len(first["figures"]) == 4

    def refit(*args, **kwargs):
        raise AssertionError("refit, scored or drawn again on unchanged input")

    monkeypatch.setattr(classifier, "train_classifier", refit)
    monkeypatch.setattr(pca, "fit_pca", refit)
    monkeypatch.setattr(classifier, "evaluate_classifier", refit)
    for drawing in ("scree_plot", "pca_scatter", "sample_grid", "confusion_matrix"):
        monkeypatch.setattr(figures, drawing, refit)
    run_project(raw_images_path=str(raw), data_root=str(data), **WEIGHTS_PARAMS)
    again = outputs()
    # The featurization report describes each run's work; every other output is the same.
    run_reports = [json.loads(r.pop("featurization_report.json")) for r in (first, again)
                   for r in [r["reports"]]]  # fmt: skip
    assert [(r["contents_new"], r["contents_reused"]) for r in run_reports] == [(32, 0), (0, 32)]
    assert again["reports"] == first["reports"]
    assert again["figures"] == first["figures"]
    for name, frame in first["tables"].items():
        pd.testing.assert_frame_equal(again["tables"][name], frame)
    assert repr(again["models"]) == repr(first["models"])
