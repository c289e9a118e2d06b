"""The MobileNetV2 backbone: built from weight arrays, exported for the workers.

Two runtimes run the same network with the same weights:

- ``tflite``: TensorFlow Lite (LiteRT, XNNPACK kernels). The driver converts the
  Keras model once; the flatbuffer, which holds the weights, is what gets broadcast,
  and workers run it with LiteRT's interpreter without importing TensorFlow. Outputs
  equal Keras's within 1e-4, at several times Keras's speed on CPU (BENCHMARKS.md).
- ``keras``: Keras ``predict_on_batch`` on a model built with ``weights=None`` and
  given the broadcast weight arrays. The reference, and the fallback.

The precision is ``float32`` (the reference) or, with ``tflite``, ``int8``: weights and
activations quantized after training, the activations' ranges calibrated on real images
(``calibration``); about twice the images per second on a CPU with 8-bit dot-product
instructions (AVX-512 VNNI, AVX-VNNI), features at a mean cosine of ~0.96 to float32's.

``fruits.vision.embedder`` runs either where the images are.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fruits.errors import FruitsInputError

if TYPE_CHECKING:
    import keras

logger = logging.getLogger(__name__)

FEATURE_DIM = 1280
RUNTIMES = ("tflite", "keras")
# The input sides MobileNetV2's ImageNet weights were trained at.
INPUT_SIZES = (96, 128, 160, 192, 224)
# Bump when decode_image or preprocess_image change what features an image gets:
# features cached under another version are recomputed.
PREPROCESSING_VERSION = 2


@dataclass(frozen=True)
class PortableBackbone:
    """The backbone in the form the driver broadcasts to the workers.

    Attributes:
        runtime: ``tflite`` or ``keras``.
        input_size: Square input side in pixels.
        payload: The TFLite flatbuffer (weights included) or the Keras weight arrays.
        fingerprint: Identifies what features this backbone gives an image (weights,
            input size, runtime, preprocessing): cached features are reused only
            under the same fingerprint.
    """

    runtime: str
    input_size: int
    payload: bytes | list[np.ndarray]
    fingerprint: str = ""
    # What it was exported from, when known (``export_source``): a later run with the same
    # weights file and settings reuses it without reading the weights (no TensorFlow).
    source: str | None = None
    precision: str = "float32"


def _not_exporting() -> list[np.ndarray]:
    raise ValueError("calibration images are only read to export an int8 backbone")


@dataclass(frozen=True)
class Int8Calibration:
    """Quantize to int8 with the activation ranges of ``count`` images (``images()``:
    preprocessed inputs, float32, the backbone's input size), read only to export."""

    count: int
    images: Callable[[], list[np.ndarray]] = _not_exporting


@dataclass(frozen=True)
class BackboneWeights:
    """A weights file's sha256 (when known) and its arrays, read on demand with Keras."""

    sha256: str | None
    read: Callable[[], list[np.ndarray]]

    def arrays(self) -> list[np.ndarray]:
        """The weight arrays in ``model.get_weights()`` order (imports TensorFlow)."""
        return self.read()


def export_source(
    weights_sha256: str | None,
    input_size: int,
    runtime: str,
    int8: Int8Calibration | None = None,
) -> str | None:
    """What decides an export, known without reading the weights: None if the file's sha256
    is unknown. An int8 export is kept with its first calibration (the same number of
    images): new photos never re-quantize the backbone, which would recompute every feature."""
    if weights_sha256 is None:
        return None
    kind = runtime if int8 is None else f"{runtime}-int8x{int8.count}"
    return f"{weights_sha256}/{kind}/{input_size}/{PREPROCESSING_VERSION}"


def build_backbone(weights: list[np.ndarray], input_size: int) -> keras.Model:
    """MobileNetV2 without top, global average pooling, with the given weights set.

    Built with ``weights=None`` so nothing is ever downloaded; the arrays come from
    the driver.
    """
    import keras  # noqa: PLC0415 - keep TensorFlow out of processes that never embed.

    model = keras.applications.MobileNetV2(
        include_top=False,
        weights=None,
        pooling="avg",
        input_shape=(input_size, input_size, 3),
    )
    model.set_weights(weights)
    return model


def read_weights_file(weights_file: Path) -> list[np.ndarray]:
    """Load a Keras HDF5 MobileNetV2 no-top weights file into a list of arrays.

    The arrays are in ``model.get_weights()`` order, ready for ``build_backbone`` (any
    input size: the backbone is fully convolutional).
    """
    import keras  # noqa: PLC0415 - TensorFlow is slow to import; only load it when needed.

    model = keras.applications.MobileNetV2(
        include_top=False, weights=None, pooling="avg", input_shape=(224, 224, 3)
    )
    model.load_weights(str(weights_file))
    return model.get_weights()


def backbone_fingerprint(
    weights: list[np.ndarray],
    input_size: int,
    runtime: str,
    precision: str = "float32",
    calibration: Sequence[np.ndarray] = (),
) -> str:
    """A short digest of everything that decides an image's features: the weights, input
    size, runtime, preprocessing and, when quantized, the precision and calibration images."""
    kind = runtime if precision == "float32" else f"{runtime}-{precision}"
    digest = hashlib.sha256(f"{kind}/{input_size}/{PREPROCESSING_VERSION}".encode())
    for array in (*weights, *calibration):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:16]


def prepare_backbone(
    weights: BackboneWeights,
    input_size: int,
    runtime: str,
    previous: PortableBackbone | None = None,
    int8: Int8Calibration | None = None,
) -> PortableBackbone:
    """The export for these weights and settings: the last one when it was made from the
    same weights file (same sha256) and settings (``int8`` included), without reading the
    weights or importing TensorFlow; else a float32 ``export_backbone`` (which
    ``quantize_backbone`` turns into the int8 one when ``int8`` is asked for)."""
    source = export_source(weights.sha256, input_size, runtime, int8)
    if previous is not None and source is not None and previous.source == source:
        logger.info("Backbone %s unchanged: the last export is reused.", previous.fingerprint)
        return previous
    float32 = previous if previous is not None and previous.precision == "float32" else None
    exported = export_backbone(weights.arrays(), input_size, runtime, float32)
    return replace(exported, source=export_source(weights.sha256, input_size, runtime))


def quantize_backbone(
    prepared: PortableBackbone, weights: BackboneWeights, int8: Int8Calibration | None
) -> PortableBackbone:
    """``prepared`` as it is (float32 asked for, or already the int8 export), else its
    weights quantized to int8 with ``int8``'s calibration images."""
    if int8 is None or prepared.precision == "int8":
        return prepared
    quantized = export_backbone(weights.arrays(), prepared.input_size, prepared.runtime, None, int8)
    source = export_source(weights.sha256, prepared.input_size, prepared.runtime, int8)
    return replace(quantized, source=source)


def export_backbone(
    weights: list[np.ndarray],
    input_size: int,
    runtime: str,
    previous: PortableBackbone | None = None,
    int8: Int8Calibration | None = None,
) -> PortableBackbone:
    """Prepare the backbone for broadcasting: a TFLite flatbuffer or the raw weights.

    Done once, on the driver, so that no worker converts or downloads anything.
    ``previous`` (the last export) is returned as it is when its fingerprint is this
    one's: the conversion (seconds, and a TensorFlow graph) is skipped. With ``int8``
    (tflite only), weights and activations are quantized to 8 bits.
    """
    precision = "int8" if int8 else "float32"
    if int8 and runtime != "tflite":
        raise ValueError(f"precision int8 is not available with runtime {runtime!r}")
    images = int8.images() if int8 else []
    if int8 and not images:
        raise FruitsInputError(
            "precision int8: no usable training image to calibrate on; add images to the "
            "training split or set featurization.precision to float32"
        )
    fingerprint = backbone_fingerprint(weights, input_size, runtime, precision, images)
    if previous is not None and previous.fingerprint == fingerprint:
        logger.info("Backbone %s unchanged: the last export is reused.", fingerprint)
        return previous
    if runtime == "keras":
        return PortableBackbone(runtime, input_size, weights, fingerprint)
    flatbuffer = _to_tflite(build_backbone(weights, input_size), images)
    if precision == "int8":
        logger.info(
            "Backbone quantized to int8 (calibrated on %d images); this CPU's 8-bit "
            "instructions for LiteRT's XNNPACK kernels: %s.",
            len(images), cpu_int8_support(),
        )  # fmt: skip
    return PortableBackbone(runtime, input_size, flatbuffer, fingerprint, precision=precision)


def cpu_int8_support() -> str:
    """The CPU's 8-bit dot-product instruction sets XNNPACK picks kernels by (Linux)."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split("flags")[1].split("\n")[0].split())
    except (OSError, IndexError):
        return "unknown (no /proc/cpuinfo)"
    found = [name for name in ("amx_int8", "avx512_vnni", "avx_vnni", "avx2") if name in flags]
    return ", ".join(found) or "none of AMX-INT8, AVX-512 VNNI, AVX-VNNI, AVX2 (slow)"


def _to_tflite(model: keras.Model, calibration: Sequence[np.ndarray] = ()) -> bytes:
    import tensorflow as tf  # noqa: PLC0415
    from tensorflow.python.framework.convert_to_constants import (  # noqa: PLC0415
        convert_variables_to_constants_v2,
    )

    # The inference function with its weights frozen into constants, converted as a
    # graph: 2 s, where TFLiteConverter.from_keras_model first exports and reloads a
    # SavedModel (9 s here) for the same flatbuffer. Without calibration images, float32
    # throughout: features equal to Keras's.
    size = model.input_shape[1]
    inference = tf.function(lambda images: model(images, training=False))
    frozen = convert_variables_to_constants_v2(
        inference.get_concrete_function(tf.TensorSpec([None, size, size, 3], tf.float32))
    )
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
    if len(calibration):
        # Full integer quantization (weights and activations int8), float32 in and out: the
        # workers feed and read it as they do the float32 model.
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([image[np.newaxis]] for image in calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    # The converter prints the traced signature (hundreds of lines): keep logs readable.
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return converter.convert()
