"""The exported backbone: kept between runs for the apps, re-exported only when it changes."""

import json
from dataclasses import replace

import numpy as np
import pytest
from kedro.io import DatasetError

from fruits.datasets import PortableBackboneDataset
from fruits.errors import FruitsInputError
from fruits.vision import backbone as backbone_module
from fruits.vision.backbone import (
    BackboneWeights,
    Int8Calibration,
    PortableBackbone,
    export_backbone,
    export_source,
    prepare_backbone,
    quantize_backbone,
)
from fruits.vision.embedder import load_embedder
from fruits.vision.images import usable_inputs
from tests.conftest import FRUITS_360


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
        dataset.save(replace(tflite_backbone, fingerprint="0" * 16))
    assert not dataset.exists()
    with pytest.raises(FileNotFoundError):
        dataset.load_description()


def test_the_same_backbone_is_not_written_again(tmp_path, tflite_backbone, monkeypatch):
    dataset = PortableBackboneDataset(filepath=str(tmp_path / "backbone"))
    dataset.save(tflite_backbone)
    monkeypatch.setattr(dataset._fs, "pipe_file", lambda *args, **kwargs: 1 / 0)
    dataset.save(tflite_backbone)  # nothing written: the stored one is this one
    assert dataset.load() == tflite_backbone


def test_an_export_from_the_same_weights_file_is_reused_without_reading_it(tflite_backbone):
    """A later run with the same weights file (sha256) and settings: no TensorFlow at all."""

    def unread():
        raise AssertionError("the weights were read")

    stored = replace(tflite_backbone, source=export_source("a" * 64, 224, "tflite"))
    weights = BackboneWeights("a" * 64, unread)
    assert prepare_backbone(weights, 224, "tflite", stored) is stored
    with pytest.raises(AssertionError, match="the weights were read"):
        prepare_backbone(weights, 160, "tflite", stored)  # another input size: a new export
    with pytest.raises(AssertionError, match="the weights were read"):
        prepare_backbone(BackboneWeights("b" * 64, unread), 224, "tflite", stored)


def test_export_is_reused_when_the_fingerprint_is_unchanged(weights, tflite_backbone, monkeypatch):
    def no_conversion(model, calibration=()):
        raise AssertionError("converted again")

    monkeypatch.setattr(backbone_module, "_to_tflite", no_conversion)
    assert export_backbone(weights, 224, "tflite", tflite_backbone) is tflite_backbone
    # Another input size is another backbone: exported again.
    with pytest.raises(AssertionError, match="converted again"):
        export_backbone(weights, 160, "tflite", tflite_backbone)


@pytest.fixture(scope="module")
def calibration_and_probe_images():
    """40 real training images to calibrate on, 30 other real images to compare features."""
    files = sorted(FRUITS_360.glob("Training/*/*.jpg"))
    contents = [path.read_bytes() for path in files[::7]]
    inputs = usable_inputs(contents, 224)
    return inputs[:40], np.stack(inputs[40:70])


def test_an_int8_backbone_stays_close_to_float32_and_is_another_backbone(
    weights, tflite_backbone, calibration_and_probe_images, tmp_path
):
    """Real images: cosine to float32's features, its own fingerprint, kept as int8."""
    calibration, probe = calibration_and_probe_images
    int8 = export_backbone(weights, 224, "tflite", None, Int8Calibration(40, lambda: calibration))
    assert int8.precision == "int8" and len(int8.payload) < len(tflite_backbone.payload) / 2
    assert int8.fingerprint != tflite_backbone.fingerprint
    ours, reference = load_embedder(int8, 1)(probe), load_embedder(tflite_backbone, 1)(probe)
    cosine = np.sum(ours * reference, 1) / np.linalg.norm(ours, axis=1)
    cosine /= np.linalg.norm(reference, axis=1)
    assert 0.9 < cosine.mean() < 0.999  # close, and not float32 in disguise
    other = Int8Calibration(20, lambda: calibration[:20])
    assert export_backbone(weights, 224, "tflite", None, other).fingerprint != int8.fingerprint
    dataset = PortableBackboneDataset(filepath=str(tmp_path / "backbone"))
    dataset.save(int8)
    assert dataset.load() == int8


def test_an_int8_export_is_kept_without_calibrating_again(tflite_backbone):
    """New images must not re-quantize the backbone: that would recompute every feature."""

    def unread():
        raise AssertionError("read again")

    weights = BackboneWeights("a" * 64, unread)
    int8 = Int8Calibration(100, unread)
    stored = replace(
        tflite_backbone, source=export_source("a" * 64, 224, "tflite", int8), precision="int8"
    )
    assert prepare_backbone(weights, 224, "tflite", stored, int8) is stored
    assert quantize_backbone(stored, weights, int8) is stored
    # Another number of calibration images, or float32: another backbone.
    with pytest.raises(AssertionError, match="read again"):
        prepare_backbone(weights, 224, "tflite", stored, Int8Calibration(50, unread))
    with pytest.raises(AssertionError, match="read again"):
        prepare_backbone(weights, 224, "tflite", stored)


def test_a_float32_export_is_quantized_only_when_int8_is_asked_for(
    weights, tflite_backbone, calibration_and_probe_images
):
    calibration, _ = calibration_and_probe_images
    known = BackboneWeights("a" * 64, lambda: weights)
    assert quantize_backbone(tflite_backbone, known, None) is tflite_backbone
    int8 = Int8Calibration(40, lambda: calibration)
    quantized = quantize_backbone(tflite_backbone, known, int8)
    assert quantized.precision == "int8"
    assert quantized.source == export_source("a" * 64, 224, "tflite", int8)


def test_int8_needs_tflite_and_usable_calibration_images(weights):
    with pytest.raises(ValueError, match="int8 is not available with runtime 'keras'"):
        export_backbone(weights, 224, "keras", None, Int8Calibration(1, lambda: []))
    with pytest.raises(FruitsInputError, match="no usable training image to calibrate on"):
        export_backbone(weights, 224, "tflite", None, Int8Calibration(1, lambda: []))
