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
import gc
import hashlib
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fruits.errors import FruitsInputError

if TYPE_CHECKING:
    import keras

FEATURE_DIM = 1280
BACKBONES = ("mobilenet_v2",)
RUNTIMES = ("tflite", "keras")
# The input sides MobileNetV2's ImageNet weights were trained at.
INPUT_SIZES = (96, 128, 160, 192, 224)
# Bump when decode_image or preprocess_image change what features an image gets:
# features cached under another version are recomputed.
PREPROCESSING_VERSION = 2

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
        fingerprint: Identifies what features this backbone gives an image (weights,
            input size, runtime, preprocessing): cached features are reused only
            under the same fingerprint.
    """

    runtime: str
    input_size: int
    payload: bytes | list[np.ndarray]
    fingerprint: str = ""


class UnreadableImageError(ValueError):
    """Bytes that do not decode to an image; the message is the reason kept for the user."""


# Fruits-360 backgrounds are white: transparent pixels become white, not black.
_BACKGROUND = (255, 255, 255)
# Refuse to decode more pixels than this (PIL's decompression-bomb guard raises beyond it).
MAX_IMAGE_PIXELS = 100_000_000


def decode_image(content: bytes, input_size: int) -> Image.Image:
    """Decode encoded image bytes into an upright 8-bit RGB image.

    - JPEGs much larger than ``input_size`` are decoded at a reduced scale (1/2..1/8,
      never below ``input_size``), so a 6000x4000 phone photo costs a 750x500 decode.
    - The EXIF orientation tag is applied.
    - Grayscale, palette, CMYK and 16-bit images become RGB; transparent pixels
      (RGBA, LA, palette transparency) are composited on white.

    Raises:
        UnreadableImageError: Empty, truncated, corrupt, oversized or not an image.
    """
    if not content:
        raise UnreadableImageError("empty file")
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    try:
        with Image.open(io.BytesIO(content)) as image:
            image.draft("RGB", (input_size, input_size))
            return _to_rgb(ImageOps.exif_transpose(image))
    except UnidentifiedImageError as error:
        raise UnreadableImageError(
            "not an image in a supported format (JPEG, PNG, WebP, BMP, GIF, TIFF)"
        ) from error
    except Image.DecompressionBombError as error:
        raise UnreadableImageError(f"image too large ({error})") from error
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise UnreadableImageError(f"corrupt or truncated image ({error})") from error


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit (or wider) grayscale: scale to 8 bits instead of clipping at 255.
        pixels = np.asarray(image, dtype=np.float64)
        if image.mode.startswith("I;16") or pixels.max(initial=0) > 255:  # noqa: PLR2004
            pixels = pixels / 257.0
        return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "L").convert("RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*_BACKGROUND, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def preprocess_image(content: bytes, input_size: int) -> np.ndarray:
    """Decode encoded image bytes into a MobileNetV2 input array of shape (size, size, 3).

    ``decode_image``, then the steps of ``keras.utils.load_img(...,
    interpolation="bilinear")`` and ``mobilenet_v2.preprocess_input``: bilinear resize,
    scale to [-1, 1]. Equal to Keras's for ordinary RGB images (tested).

    Raises:
        UnreadableImageError: The bytes are not a usable image.
    """
    pixels = np.empty((input_size, input_size, 3), dtype=np.float32)
    preprocess_into(content, pixels)
    return pixels


def preprocess_into(content: bytes, pixels: np.ndarray) -> None:
    """``preprocess_image`` written into ``pixels``, a float32 (size, size, 3) array.

    In place, because a fresh 600 kB array per step costs more than the arithmetic
    (page faults): this takes 0.5 ms off each image's preprocessing, with the same
    operations in the same order, so the result is bit-identical.

    Raises:
        UnreadableImageError: The bytes are not a usable image.
    """
    input_size = pixels.shape[0]
    rgb = decode_image(content, input_size)
    pixels[...] = np.asarray(rgb.resize((input_size, input_size), Image.Resampling.BILINEAR))
    pixels /= 127.5
    pixels -= 1.0


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


def check_backbone_settings(backbone: str, input_size: int, runtime: str) -> None:
    """Refuse an unknown backbone, runtime or input size with an actionable message."""
    if backbone not in BACKBONES:
        raise FruitsInputError(
            f"Unknown featurization.backbone {backbone!r}: use one of {', '.join(BACKBONES)}."
        )
    if runtime not in RUNTIMES:
        raise FruitsInputError(
            f"Unknown featurization.runtime {runtime!r}: use one of {', '.join(RUNTIMES)}."
        )
    if isinstance(input_size, bool) or input_size not in INPUT_SIZES:
        raise FruitsInputError(
            f"Invalid featurization.input_size {input_size!r}: use one of "
            f"{', '.join(map(str, INPUT_SIZES))} (the sizes MobileNetV2 was trained at)."
        )


def backbone_fingerprint(weights: list[np.ndarray], input_size: int, runtime: str) -> str:
    """A short digest of everything that decides an image's features."""
    digest = hashlib.sha256(f"{runtime}/{input_size}/{PREPROCESSING_VERSION}".encode())
    for array in weights:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:16]


def export_backbone(weights: list[np.ndarray], input_size: int, runtime: str) -> PortableBackbone:
    """Prepare the backbone for broadcasting: a TFLite flatbuffer or the raw weights.

    Raises:
        FruitsInputError: For an unknown runtime or an unsupported input size.
    """
    check_backbone_settings("mobilenet_v2", input_size, runtime)
    fingerprint = backbone_fingerprint(weights, input_size, runtime)
    if runtime == "keras":
        return PortableBackbone(runtime, input_size, weights, fingerprint)
    flatbuffer = _to_tflite(build_backbone(weights, input_size))
    return PortableBackbone(runtime, input_size, flatbuffer, fingerprint)


def _to_tflite(model: keras.Model) -> bytes:
    import tensorflow as tf  # noqa: PLC0415
    from tensorflow.python.framework.convert_to_constants import (  # noqa: PLC0415
        convert_variables_to_constants_v2,
    )

    # The inference function with its weights frozen into constants, converted as a
    # graph: 2 s, where TFLiteConverter.from_keras_model first exports and reloads a
    # SavedModel (9 s here) for the same flatbuffer. Float32 throughout, no
    # quantization: features must stay equal to Keras's.
    size = model.input_shape[1]
    inference = tf.function(lambda images: model(images, training=False))
    frozen = convert_variables_to_constants_v2(
        inference.get_concrete_function(tf.TensorSpec([None, size, size, 3], tf.float32))
    )
    # The converter prints the traced signature (hundreds of lines): keep logs readable.
    with contextlib.redirect_stdout(io.StringIO()):
        return tf.lite.TFLiteConverter.from_concrete_functions([frozen]).convert()


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
        token: Identifies the backbone and threads (its fingerprint, or one per run).
        backbone_loader: Called once, on first use, to obtain the backbone (reads the
            Spark broadcast variable).
        threads: CPU threads for inference in this process.
    """
    if token not in _embedders:
        _embedders.clear()
        gc.unfreeze()  # what the replaced embedder leaves behind can be collected again
        _embedders[token] = load_embedder(backbone_loader(), threads)
        # Spark's Python daemon runs a full gc.collect() after every task of a reused
        # worker, and the next task waits for it: 26 ms with LiteRT loaded, 220 ms once
        # TensorFlow is (runtime keras). Frozen, the long-lived objects (modules, the
        # model) are skipped by those collections: about 0 ms.
        gc.collect()
        gc.freeze()
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
) -> Iterator[tuple[np.ndarray | None, str | None]]:
    """Yield ``(features, None)`` or ``(None, reason)`` per encoded image, in order.

    The model runs on batches of up to ``batch_size`` decodable images; an image that
    does not decode gets its reason and never stops the others.
    """
    # One input buffer for every batch: the embedder copies it into the model.
    inputs = np.empty((batch_size, input_size, input_size, 3), dtype=np.float32)
    chunk: list[bytes] = []
    for content in contents:
        chunk.append(content)
        if len(chunk) == batch_size:
            yield from _embed_chunk(chunk, embedder, inputs)
            chunk = []
    if chunk:
        yield from _embed_chunk(chunk, embedder, inputs)


def _embed_chunk(
    chunk: list[bytes], embedder: Embedder, inputs: np.ndarray
) -> Iterator[tuple[np.ndarray | None, str | None]]:
    decoded = 0
    reasons: list[str | None] = []
    for content in chunk:
        try:
            preprocess_into(content, inputs[decoded])
            decoded += 1
            reasons.append(None)
        except UnreadableImageError as error:
            reasons.append(str(error))
    features = iter(embedder(inputs[:decoded]) if decoded else ())
    for reason in reasons:
        yield (None, reason) if reason else (next(features), None)
