"""Photos to fruit guesses in one process, in milliseconds: what an app calls.

The exported backbone (the TFLite flatbuffer, run by LiteRT: no TensorFlow import),
then the saved PCA and classifier applied with NumPy (``LocalPipelineModel``): the
pipeline's own preprocessing and models, without Spark. ``fruits-serve`` and
``fruits-predict`` both answer through here.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from fruits.ml.local_models import LocalPipelineModel
from fruits.vision.backbone import FEATURE_DIM, PortableBackbone
from fruits.vision.embedder import Embedder, load_embedder
from fruits.vision.images import MAX_IMAGE_PIXELS, UnreadableImageError, preprocess_into

# Photos per backbone call in ``predict``.
BATCH = 32
# Features (n, 1280) to class probabilities (n, classes) and the class names.
Classify = Callable[[np.ndarray], tuple[np.ndarray, list[str]]]


@dataclass(frozen=True)
class PhotoAnswer:
    """The guesses for one photo, most probable first, or why it has none."""

    guesses: list[dict[str, Any]] | None = None
    error: str | None = None


class FruitPredictor:
    """A backbone, a PCA and a classifier loaded once, answering from any thread.

    Args:
        backbone: The exported backbone (``exported_backbone`` in the catalog).
        pca_model: ``pca_model`` applied with NumPy.
        classifier: ``fruit_classifier`` applied with NumPy.
        fruit_info: One record per class (``label`` and what to tell about it).
        interpreters: Backbone instances, each used by one request at a time (an
            interpreter is not thread-safe): concurrent requests run in parallel up to
            this number.
        threads: Inference threads of each instance.
        max_pixels: Larger images are refused from their header, before decoding.

    Raises:
        ValueError: The three models do not fit together (e.g. a PCA fitted on other
            features than this backbone gives, or a classifier of another PCA).
    """

    def __init__(  # noqa: PLR0913 - the models and their serving settings
        self,
        backbone: PortableBackbone,
        pca_model: LocalPipelineModel,
        classifier: LocalPipelineModel,
        fruit_info: Sequence[dict[str, Any]],
        *,
        interpreters: int = 1,
        threads: int = 1,
        max_pixels: int = MAX_IMAGE_PIXELS,
    ) -> None:
        self.input_size = backbone.input_size
        self.max_pixels = max_pixels
        self._pca_model = pca_model
        self._classifier = classifier
        self._info = {str(row["label"]): _about(row) for row in fruit_info}
        self.version = {
            "backbone": backbone.fingerprint,
            "pca_model": pca_model.digest,
            "fruit_classifier": classifier.digest,
        }
        self.version_tag = "-".join(digest[:8] for digest in self.version.values())
        # Decoding holds a photo's pixels (up to max_pixels of them): at most as many
        # photos are decoded at once as there are interpreters to take them.
        self._decoding = threading.BoundedSemaphore(interpreters)
        self._embedders: queue.SimpleQueue[Embedder] = queue.SimpleQueue()
        for _ in range(interpreters):
            self._embedders.put(load_embedder(backbone, threads))
        self.labels = self._check_models_fit()

    def _check_models_fit(self) -> list[str]:
        # One blank image through every model: dimensions that do not chain fail here,
        # at load time, not on a user's request.
        blank = np.zeros((1, self.input_size, self.input_size, 3), dtype=np.float32)
        with self._embedder() as embed:
            features = embed(blank)
        if features.shape != (1, FEATURE_DIM):
            raise ValueError(f"the backbone gives {features.shape[1:]} features, not {FEATURE_DIM}")
        try:
            _, labels = self.classify(features)
        except ValueError as error:
            raise ValueError(
                f"pca_model and fruit_classifier do not fit together ({error})"
            ) from None
        return labels

    @contextmanager
    def _embedder(self) -> Iterator[Embedder]:
        embedder = self._embedders.get()
        try:
            yield embedder
        finally:
            self._embedders.put(embedder)

    def preprocess(self, content: bytes) -> np.ndarray:
        """The model input of one encoded photo.

        Raises:
            UnreadableImageError: Not a usable image (the message says why).
        """
        pixels = np.empty((self.input_size, self.input_size, 3), dtype=np.float32)
        with self._decoding:
            preprocess_into(content, pixels, self.max_pixels)
        return pixels

    def embed(self, inputs: np.ndarray) -> np.ndarray:
        """Backbone features of preprocessed photos, shape (n, 1280)."""
        with self._embedder() as embed:
            return embed(inputs)

    def classify(self, features: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """Class probabilities of each feature row, and the class names in their order."""
        reduced = self._pca_model.transform(features)["vector"]
        output = self._classifier.transform(reduced)
        return output["probability"], output["labels"]

    def predict(
        self, contents: Sequence[bytes], top: int = 3, classify: Classify | None = None
    ) -> list[PhotoAnswer]:
        """The ``top`` guesses for each encoded photo; a bad photo gets its reason only.

        Photos go through the backbone ``BATCH`` at a time (memory stays bounded).
        ``classify`` replaces the NumPy PCA and classifier (``fruits-predict --spark``
        applies the same models with Spark ML).
        """
        answers: list[PhotoAnswer] = []
        for start in range(0, len(contents), BATCH):
            batch = contents[start : start + BATCH]
            answers += self._predict_batch(batch, top, classify or self.classify)
        return answers

    def _predict_batch(
        self, contents: Sequence[bytes], top: int, classify: Classify
    ) -> list[PhotoAnswer]:
        answers: list[PhotoAnswer | None] = []
        inputs = []
        for content in contents:
            try:
                inputs.append(self.preprocess(content))
                answers.append(None)
            except UnreadableImageError as error:
                answers.append(PhotoAnswer(error=str(error)))
        if inputs:
            probabilities, labels = classify(self.embed(np.stack(inputs)))
            guesses = iter(self.top_guesses(probabilities, labels, top))
            answers = [answer or PhotoAnswer(guesses=next(guesses)) for answer in answers]
        return answers

    def top_guesses(
        self, probabilities: np.ndarray, labels: list[str], top: int
    ) -> list[list[dict[str, Any]]]:
        """The ``top`` classes of each row, most probable first, with the fruit's information."""
        results = []
        for row in probabilities:
            order = np.argsort(row)[::-1][:top]
            results.append([
                {"label": labels[i], "probability": float(row[i]), **self._info.get(labels[i], {})}
                for i in order
            ])  # fmt: skip
        return results


def _about(row: dict[str, Any]) -> dict[str, Any]:
    # The table's other columns (fruit, family, note), without missing values: JSON
    # has no NaN.
    return {
        key: value
        for key, value in row.items()
        if key != "label" and value is not None and value == value  # noqa: PLR0124 - NaN test
    }
