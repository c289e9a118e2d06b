"""The swap rule of the service's models, without a server: what is swapped in, and when."""

import threading

import pytest

from fruits.apps.service import ModelHolder, ModelsNotLoadedError

OLD = {"backbone": "b", "pca_model": "p1", "fruit_classifier": "c1"}
NEW = {"backbone": "b", "pca_model": "p2", "fruit_classifier": "c2"}


class FakePredictor:
    def __init__(self, version: dict) -> None:
        self.version = version
        self.version_tag = "-".join(version.values())


class Storage:
    """What the manifest says, and what the model files hold, as a run rewrites them."""

    def __init__(self) -> None:
        self.manifest, self.files, self.loads = OLD, OLD, 0

    def probe(self) -> dict:
        return self.manifest

    def load(self) -> FakePredictor:
        self.loads += 1
        if self.files == "broken":
            raise ValueError("pca_model and fruit_classifier do not fit together")
        return FakePredictor(self.files)


@pytest.fixture
def storage() -> Storage:
    return Storage()


@pytest.fixture
def holder(storage) -> ModelHolder:
    return ModelHolder(storage.load, storage.probe, FakePredictor(OLD))


def test_nothing_new_loads_nothing(holder, storage):
    assert holder.reload() is False and storage.loads == 0


def test_files_rewritten_before_the_manifest_changes_are_not_loaded(holder, storage):
    """A run in progress: new PCA written, manifest still the old run's."""
    storage.files = {**OLD, "pca_model": "p2"}
    assert holder.reload() is False and holder.predictor.version == OLD


def test_a_manifest_ahead_of_the_files_is_not_swapped_in(holder, storage):
    """The manifest names models the files do not hold (yet): keep serving, try later."""
    storage.manifest, storage.files = NEW, {**OLD, "pca_model": "p2"}
    with pytest.raises(ModelsNotLoadedError, match="being rewritten"):
        holder.reload()
    assert holder.predictor.version == OLD
    storage.files = NEW
    assert holder.reload() is True and holder.predictor.version == NEW


def test_models_that_do_not_fit_are_not_tried_again(holder, storage):
    storage.manifest, storage.files = NEW, "broken"
    with pytest.raises(ModelsNotLoadedError, match="do not fit"):
        holder.reload()
    assert holder.reload() is False and storage.loads == 1  # not reloaded every interval
    assert holder.predictor.version == OLD
    storage.manifest, storage.files = (
        {**NEW, "fruit_classifier": "c3"},
        {**NEW, "fruit_classifier": "c3"},
    )
    assert holder.reload() is True  # a newer version is tried


def test_the_watcher_keeps_serving_through_errors(holder, storage):
    storage.manifest, storage.files = NEW, "broken"
    stop = threading.Event()
    watcher = threading.Thread(target=holder.watch, args=(0.01, stop))
    watcher.start()
    try:
        storage.files = "broken"
        threading.Event().wait(0.1)
        assert holder.predictor.version == OLD
    finally:
        stop.set()
        watcher.join(timeout=5)
    assert not watcher.is_alive()
