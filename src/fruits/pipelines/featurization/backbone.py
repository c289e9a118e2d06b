"""The MobileNetV2 backbone as used inside Spark's Python workers and by plain Python.

Two runtimes run the same network with the same weights:

- ``tflite``: TensorFlow Lite (LiteRT, XNNPACK kernels). The driver converts the
  Keras model once; the flatbuffer, which holds the weights, is what gets broadcast,
  and workers run it with LiteRT's interpreter without importing TensorFlow. Outputs
  equal Keras's within 1e-4, at several times Keras's speed on CPU (BENCHMARKS.md).
- ``keras``: Keras ``predict_on_batch`` on a model built with ``weights=None`` and
  given the broadcast weight arrays. The reference, and the fallback.

Everything else here runs where the images are: decode and preprocess, build the
network once per process, embed in batches.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    import keras

FEATURE_DIM = 1280
RUNTIMES = ("tflite", "keras")

# A function from a batch of preprocessed images (n, size, size, 3) to features (n, 1280).
Embedder = Callable[[np.ndarray], np.ndarray]

# One embedder per Python process, keyed by the run's token, so that a Spark worker
# reused across tasks builds the network once for the whole stage.
_embedders: dict[str, Embedder] = {}


@dataclass(frozen=True)
class PortableBackbone:
    """The backbone in the form the driver broadcasts to the workers.

    Attributes:
        runtime: ``tflite`` or ``keras``.
        input_size: Square input side in pixels.
        payload: The TFLite flatbuffer (weights included) or the Keras weight arrays.
    """

    runtime: str
    input_size: int
    payload: bytes | list[np.ndarray]


def preprocess_image(content: bytes, input_size: int) -> np.ndarray:
    """Decode encoded image bytes into a MobileNetV2 input array of shape (size, size, 3).

    Same steps as ``keras.utils.load_img(..., interpolation="bilinear")`` followed by
    ``mobilenet_v2.preprocess_input``: RGB conversion, bilinear resize, scale to [-1, 1].
    """
    with Image.open(io.BytesIO(content)) as image:
        rgb = image.convert("RGB") if image.mode != "RGB" else image
        resized = rgb.resize((input_size, input_size), Image.Resampling.BILINEAR)
        pixels = np.asarray(resized, dtype=np.float32)
    return pixels / 127.5 - 1.0


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


def export_backbone(weights: list[np.ndarray], input_size: int, runtime: str) -> PortableBackbone:
    """Prepare the backbone for broadcasting: a TFLite flatbuffer or the raw weights.

    Raises:
        ValueError: For an unknown runtime or an input size outside 32..1024.
    """
    if runtime not in RUNTIMES:
        raise ValueError(
            f"Unknown featurization runtime {runtime!r}: set featurization.runtime to one of "
            f"{', '.join(RUNTIMES)}."
        )
    if not isinstance(input_size, int) or not 32 <= input_size <= 1024:  # noqa: PLR2004
        raise ValueError(
            f"Invalid featurization.input_size {input_size!r}: use an integer between 32 and "
            "1024 (MobileNetV2 was trained at 96..224)."
        )
    if runtime == "keras":
        return PortableBackbone(runtime, input_size, weights)
    return PortableBackbone(runtime, input_size, _to_tflite(build_backbone(weights, input_size)))


def _to_tflite(model: keras.Model) -> bytes:
    import tensorflow as tf  # noqa: PLC0415

    # Float32 throughout, no quantization: features must stay equal to Keras's. The
    # converter prints the traced signature (hundreds of lines) to stdout: keep logs readable.
    with contextlib.redirect_stdout(io.StringIO()):
        return tf.lite.TFLiteConverter.from_keras_model(model).convert()


def load_embedder(backbone: PortableBackbone, threads: int) -> Embedder:
    """Build a batch embedding function from a portable backbone, in this process.

    Args:
        backbone: What the driver exported.
        threads: CPU threads this process may use for inference; Spark already runs
            one Python worker per core, so more would oversubscribe the CPU.
    """
    if backbone.runtime == "tflite":
        return _tflite_embedder(backbone.payload, threads)
    _limit_tensorflow_threads(threads)
    model = build_backbone(backbone.payload, backbone.input_size)
    return lambda batch: np.asarray(model.predict_on_batch(batch), dtype=np.float32)


def _tflite_embedder(flatbuffer: bytes, threads: int) -> Embedder:
    # LiteRT is TensorFlow Lite's runtime on its own: a worker never imports TensorFlow
    # (seconds of start-up and hundreds of MB per worker saved).
    from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415

    interpreter = Interpreter(model_content=flatbuffer, num_threads=threads)
    input_index = interpreter.get_input_details()[0]["index"]
    output_index = interpreter.get_output_details()[0]["index"]
    allocated_batch = [0]

    def embed(batch: np.ndarray) -> np.ndarray:
        # Resizing reallocates the interpreter's buffers: only when the batch size changes.
        if batch.shape[0] != allocated_batch[0]:
            interpreter.resize_tensor_input(input_index, batch.shape)
            interpreter.allocate_tensors()
            allocated_batch[0] = batch.shape[0]
        interpreter.set_tensor(input_index, np.ascontiguousarray(batch, dtype=np.float32))
        interpreter.invoke()
        return interpreter.get_tensor(output_index).copy()

    return embed


def cached_embedder(
    token: str, backbone_loader: Callable[[], PortableBackbone], threads: int
) -> Embedder:
    """Return this process's embedder for ``token``, building it on first use only.

    Args:
        token: Identifies the backbone (one per pipeline run).
        backbone_loader: Called once, on first use, to obtain the backbone (reads the
            Spark broadcast variable).
        threads: CPU threads for inference in this process.
    """
    if token not in _embedders:
        _embedders.clear()
        _embedders[token] = load_embedder(backbone_loader(), threads)
    return _embedders[token]


def _limit_tensorflow_threads(threads: int) -> None:
    import tensorflow as tf  # noqa: PLC0415

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        # TensorFlow already ran in this process: its thread pools are fixed for good.
        pass


def embed_images(
    contents: Iterable[bytes], embedder: Embedder, input_size: int, batch_size: int
) -> Iterator[np.ndarray]:
    """Yield one float32 feature vector per encoded image, running the model in batches."""
    batch: list[np.ndarray] = []
    for content in contents:
        batch.append(preprocess_image(content, input_size))
        if len(batch) == batch_size:
            yield from embedder(np.stack(batch))
            batch = []
    if batch:
        yield from embedder(np.stack(batch))
