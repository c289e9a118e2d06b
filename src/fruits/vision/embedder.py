"""The backbone at work in one process: an embedding function built once, used in batches.

A Spark Python worker, ``fruits-predict`` and the benchmark all embed through here.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable, Iterable, Iterator

import numpy as np

from fruits.vision.backbone import PortableBackbone, build_backbone
from fruits.vision.images import UnreadableImageError, preprocess_into

# A function from a batch of preprocessed images (n, size, size, 3) to features (n, 1280).
Embedder = Callable[[np.ndarray], np.ndarray]

# Logged once by each process that builds its embedder.
EMBEDDER_BUILT = "fruits: embedder built:"
# One embedder per Python process, keyed by the run's token, so that a Spark worker
# reused across tasks builds the network once for the whole stage.
_embedders: dict[str, Embedder] = {}


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
        backbone = backbone_loader()
        _embedders[token] = load_embedder(backbone, threads)
        # One line per process in the executor's log (Spark keeps a worker's stderr): on a
        # cluster, how many interpreters were built, where, for which backbone.
        sys.stderr.write(
            f"{EMBEDDER_BUILT} {backbone.runtime} backbone {backbone.fingerprint or '-'} "
            f"in process {os.getpid()} ({threads} thread(s))\n"
        )
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
