"""The MobileNetV2 backbone as used inside Spark's Python workers and by plain Python.

Everything here runs where the images are: decode and preprocess, build the model
once per process from weights held in memory (never downloaded), embed in batches.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    import keras

FEATURE_DIM = 1280

# One model per Python process, keyed by the run's weights token and input size, so
# that a Spark worker reused across tasks builds the network once.
_models: dict[tuple[str, int], keras.Model] = {}


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


def cached_backbone(
    token: str,
    weights_loader: Callable[[], list[np.ndarray]],
    input_size: int,
    intra_op_threads: int,
) -> keras.Model:
    """Return this process's model for ``token``, building it on first use only.

    Args:
        token: Identifies the weights (one per pipeline run).
        weights_loader: Called once, on first use, to obtain the weight arrays (reads
            the Spark broadcast variable).
        input_size: Square input side in pixels.
        intra_op_threads: TensorFlow threads for this process; Spark already runs
            one worker per core, so more threads would oversubscribe the CPU.
    """
    key = (token, input_size)
    if key not in _models:
        _limit_tensorflow_threads(intra_op_threads)
        _models.clear()
        _models[key] = build_backbone(weights_loader(), input_size)
    return _models[key]


def _limit_tensorflow_threads(intra_op_threads: int) -> None:
    import tensorflow as tf  # noqa: PLC0415

    try:
        tf.config.threading.set_intra_op_parallelism_threads(intra_op_threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        # TensorFlow already ran in this process: its thread pools are fixed for good.
        pass


def embed_images(
    contents: Iterable[bytes], model: keras.Model, input_size: int, batch_size: int
) -> Iterator[np.ndarray]:
    """Yield one float32 feature vector per encoded image, running the model in batches."""
    batch: list[np.ndarray] = []
    for content in contents:
        batch.append(preprocess_image(content, input_size))
        if len(batch) == batch_size:
            yield from _predict(model, batch)
            batch = []
    if batch:
        yield from _predict(model, batch)


def _predict(model: keras.Model, batch: list[np.ndarray]) -> np.ndarray:
    return np.asarray(model.predict_on_batch(np.stack(batch)), dtype=np.float32)
