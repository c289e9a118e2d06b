"""Dataset for the exported backbone: what the workers and the prediction apps run."""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
from kedro.io import AbstractDataset, DatasetError

from fruits.datasets.filesystems import filesystem
from fruits.vision.backbone import PREPROCESSING_VERSION, PortableBackbone

# Written last: a folder without it (an interrupted save) is not a backbone.
DESCRIPTION_FILE = "backbone.json"
_PAYLOAD_FILE = {"tflite": "model.tflite", "keras": "weights.npz"}


class PortableBackboneDataset(AbstractDataset[PortableBackbone, PortableBackbone]):
    """A ``PortableBackbone`` stored as a folder: the payload, then ``backbone.json``.

    ``model.tflite`` (the TFLite flatbuffer, weights included) or ``weights.npz`` (the
    Keras weight arrays), and a description with the runtime, input side and
    fingerprint. Reading the description alone (``load_description``) tells which
    backbone is there without reading the payload. Any fsspec path (local, ``s3://``).

    Example catalog entry::

        exported_backbone:
          type: fruits.datasets.PortableBackboneDataset
          filepath: data/06_models/backbone
    """

    def __init__(
        self,
        *,
        filepath: str,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._filepath = filepath.rstrip("/")
        self._fs, self._path = filesystem(self._filepath, fs_args)
        self.metadata = metadata

    def load_description(self) -> dict[str, Any]:
        """``runtime``, ``input_size``, ``precision``, ``fingerprint``, ``preprocessing_version``.

        Raises:
            FileNotFoundError: No complete backbone was saved there.
        """
        with self._fs.open(f"{self._path}/{DESCRIPTION_FILE}", "r") as handle:
            return json.load(handle)

    def load(self) -> PortableBackbone:
        """The backbone as it was exported."""
        description = self.load_description()
        runtime = description["runtime"]
        if runtime not in _PAYLOAD_FILE:
            raise DatasetError(f"{self._filepath}: unknown backbone runtime {runtime!r}.")
        payload: bytes | list[np.ndarray] = self._fs.cat_file(
            f"{self._path}/{_PAYLOAD_FILE[runtime]}"
        )
        if runtime == "keras":
            with np.load(io.BytesIO(payload)) as arrays:
                payload = [arrays[f"arr_{i}"] for i in range(len(arrays.files))]
        return PortableBackbone(
            runtime,
            description["input_size"],
            payload,
            description["fingerprint"],
            description.get("source"),
            description.get("precision", "float32"),
        )

    def save(self, data: PortableBackbone) -> None:
        """Write the payload, then the description (an interrupted save leaves none).

        The same backbone (fingerprint and source) as the one stored is not written again.
        """
        if self._exists() and {
            key: self.load_description().get(key) for key in ("fingerprint", "source")
        } == {"fingerprint": data.fingerprint, "source": data.source}:
            return
        self._fs.makedirs(self._path, exist_ok=True)
        if self._exists():
            self._fs.rm_file(f"{self._path}/{DESCRIPTION_FILE}")
        payload = data.payload
        if data.runtime == "keras":
            buffer = io.BytesIO()
            np.savez(buffer, *payload)
            payload = buffer.getvalue()
        self._fs.pipe_file(f"{self._path}/{_PAYLOAD_FILE[data.runtime]}", payload)
        description = {
            "runtime": data.runtime,
            "input_size": data.input_size,
            "precision": data.precision,
            "fingerprint": data.fingerprint,
            "preprocessing_version": PREPROCESSING_VERSION,
            "source": data.source,
        }
        self._fs.pipe_file(
            f"{self._path}/{DESCRIPTION_FILE}", json.dumps(description, indent=2).encode()
        )

    def _exists(self) -> bool:
        return self._fs.exists(f"{self._path}/{DESCRIPTION_FILE}")

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath}
