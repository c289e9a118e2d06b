"""The exported backbone: kept between runs for the apps, re-exported only when it changes."""

import json

import numpy as np
import pytest
from kedro.io import DatasetError

from fruits.datasets import PortableBackboneDataset
from fruits.vision import backbone as backbone_module
from fruits.vision.backbone import PortableBackbone, export_backbone
from fruits.vision.embedder import load_embedder


def test_tflite_backbone_round_trips_and_runs(tmp_path, tflite_backbone):
    dataset = PortableBackboneDataset(filepath=str(tmp_path / "backbone"))
    assert not dataset.exists()
    dataset.save(tflite_backbone)
    description = json.loads((tmp_path / "backbone" / "backbone.json").read_text())
    assert description["runtime"] == "tflite" and description["input_size"] == 224
    loaded = dataset.load()
    assert loaded == tflite_backbone  # runtime, size, flatbuffer and fingerprint
    images = np.random.default_rng(0).uniform(-1, 1, (2, 224, 224, 3)).astype(np.float32)
    np.testing.assert_array_equal(
        load_embedder(loaded, 1)(images), load_embedder(tflite_backbone, 1)(images)
    )


def test_keras_weights_round_trip(tmp_path, weights):
    keras_backbone = PortableBackbone("keras", 160, weights, "f" * 16)
    dataset = PortableBackboneDataset(filepath=str(tmp_path / "backbone"))
    dataset.save(keras_backbone)
    loaded = dataset.load()
    assert (loaded.runtime, loaded.input_size, loaded.fingerprint) == ("keras", 160, "f" * 16)
    assert len(loaded.payload) == len(weights)
    for ours, theirs in zip(loaded.payload, weights, strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_an_interrupted_save_leaves_no_backbone(tmp_path, tflite_backbone, monkeypatch):
    """The description is written last: a payload without it is not a backbone."""
    dataset = PortableBackboneDataset(filepath=str(tmp_path / "backbone"))
    dataset.save(tflite_backbone)
    real_pipe = dataset._fs.pipe_file

    def fail_on_description(path, value, **kwargs):
        if path.endswith("backbone.json"):
            raise OSError("disk full")
        real_pipe(path, value, **kwargs)

    monkeypatch.setattr(dataset._fs, "pipe_file", fail_on_description)
    with pytest.raises(DatasetError, match="disk full"):
        dataset.save(tflite_backbone)
    assert not dataset.exists()
    with pytest.raises(FileNotFoundError):
        dataset.load_description()


def test_export_is_reused_when_the_fingerprint_is_unchanged(weights, tflite_backbone, monkeypatch):
    def no_conversion(model):
        raise AssertionError("converted again")

    monkeypatch.setattr(backbone_module, "_to_tflite", no_conversion)
    assert export_backbone(weights, 224, "tflite", tflite_backbone) is tflite_backbone
    # Another input size is another backbone: exported again.
    with pytest.raises(AssertionError, match="converted again"):
        export_backbone(weights, 160, "tflite", tflite_backbone)
