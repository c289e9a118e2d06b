"""Dataset for the pretrained MobileNetV2 backbone weights."""

from __future__ import annotations

import hashlib
import re
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from fsspec.implementations.local import LocalFileSystem
from kedro.io import AbstractDataset, DatasetError

from fruits.datasets.filesystems import answered_within, filesystem
from fruits.errors import FruitsInputError
from fruits.vision.backbone import BackboneWeights, read_weights_file

IMAGENET = "imagenet"
# The official Keras ImageNet MobileNetV2 (alpha 1.0, 224) no-top weights file.
OFFICIAL_WEIGHTS_FILE = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
# The sha256 of every weights file this project knows, by file name: a file of one of
# these names is always checked against its digest (``sha256`` overrides it).
KNOWN_WEIGHTS_SHA256 = {
    OFFICIAL_WEIGHTS_FILE: "f8aff69536bd77a692c594f559c798c19bf7f3f36668fc9fa00b21c6aab4797c",
    # The offline copy rebuilt from the same checkpoint, for machines without internet
    # (tests, CI, benchmarks): ../shared/models/README.md.
    "mobilenet_v2_1.0_224_no_top.reconstructed.h5": (
        "71e4c4ec4aa24c9c951b9265d6de42e1336dcf614c2214fa6a989208615e232c"
    ),
}
# Every HDF5 file (Keras .h5 weights) starts with these bytes.
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


# MobileNetV2 (alpha 1.0) no-top: its first and last convolutions, and the last one's kernel.
_MOBILENET_V2_LAYERS = {"Conv1", "Conv_1"}
_LAST_CONV = "Conv_1"
_LAST_CONV_KERNEL = (1, 1, 320, 1280)


def _text(name: bytes | str) -> str:
    return name.decode() if isinstance(name, bytes) else str(name)


class WeightsFileError(FruitsInputError, DatasetError):
    """The weights file is missing, unreadable or not the expected one."""


def sha256_of(path: Path) -> str:
    """Return the hex SHA-256 digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _as_sha256(value: object) -> str:
    """A SHA-256 as 64 lower-case hex digits, however the configuration typed it.

    ``--params`` hands a digits-only hash over as a number, leading zeros lost (all
    zeros arrive as 0): padded back to 64 digits.

    Raises:
        WeightsFileError: Not 64 hexadecimal digits.
    """
    text = f"{value:064d}" if isinstance(value, int) and not isinstance(value, bool) else str(value)
    if not re.fullmatch(r"[0-9a-fA-F]{64}", text):
        raise WeightsFileError(
            f"weights_sha256={value!r} is not a SHA-256 (64 hexadecimal digits): fix it, or "
            "set it to null to check a file of a known name against its known digest."
        )
    return text.lower()


class BackboneWeightsDataset(AbstractDataset[None, BackboneWeights]):
    """MobileNetV2 ImageNet weights, loaded once on the driver to be broadcast.

    ``source`` is either ``imagenet`` (the official Keras file, downloaded once and
    cached by Keras, always checked against its official SHA-256) or a path or URI
    (``s3a://...``) to a Keras ``.h5`` weights file, checked against ``sha256``, or
    else against the known digest of its file name (``KNOWN_WEIGHTS_SHA256``).

    Example catalog entry::

        backbone_weights:
          type: fruits.datasets.BackboneWeightsDataset
          source: s3://my-bucket/models/mobilenet_v2_no_top.h5
          sha256: 71e4c4...
    """

    def __init__(
        self,
        *,
        source: str = IMAGENET,
        sha256: str | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._source = str(source)
        known = KNOWN_WEIGHTS_SHA256.get(PurePosixPath(self._source).name)
        self._sha256 = _as_sha256(sha256) if sha256 not in (None, "") else known
        self._fs_args = fs_args or {}
        self.metadata = metadata

    def load(self) -> BackboneWeights:
        """The weights: their sha256 (when known) and their arrays, read on demand.

        A local file is checked against its sha256 now; a download (``imagenet``, a remote
        file) happens when the arrays are read, and is checked then.
        """
        if self._source == IMAGENET:
            official_sha256 = KNOWN_WEIGHTS_SHA256[OFFICIAL_WEIGHTS_FILE]
            return BackboneWeights(
                official_sha256,
                lambda: self._read_verified(self._download_official(), official_sha256),
            )
        weights_filesystem, path = filesystem(self._source, self._fs_args)
        if isinstance(weights_filesystem, LocalFileSystem):
            self._check_file(Path(path), self._sha256)
            digest = self._sha256 or sha256_of(Path(path))
            return BackboneWeights(digest, lambda: self._read_verified(Path(path), self._sha256))
        return BackboneWeights(self._sha256, self._read_remote)

    def _read_remote(self) -> list[np.ndarray]:
        weights_filesystem, path = filesystem(self._source, self._fs_args)
        with tempfile.TemporaryDirectory() as download_dir:
            local_copy = Path(download_dir) / PurePosixPath(path).name
            try:
                weights_filesystem.get(path, str(local_copy))
            except FileNotFoundError as error:
                raise self._missing() from error
            return self._read_verified(local_copy, self._sha256)

    def verify(self) -> None:
        """Fail now, before any output is written, if the weights cannot be used.

        A local file must exist and match ``sha256`` when one is set; a remote one must
        exist (its hash is checked when it is fetched). ``imagenet`` is checked on load.
        """
        if self._source == IMAGENET:
            return
        weights_filesystem, path = filesystem(self._source, self._fs_args)
        if isinstance(weights_filesystem, LocalFileSystem):
            self._check_file(Path(path), self._sha256)
        elif not answered_within(lambda: weights_filesystem.exists(path), self._source):
            raise self._missing()

    def _missing(self) -> WeightsFileError:
        return WeightsFileError(
            f"Weights file {self._source} does not exist: point weights_source at a "
            "MobileNetV2 no-top .h5 file, or use 'imagenet'."
        )

    def save(self, data: list[np.ndarray]) -> None:
        """Refuse to write: the pretrained weights are an input of the project."""
        raise DatasetError("BackboneWeightsDataset is read-only.")

    def _describe(self) -> dict[str, Any]:
        return {"source": self._source, "sha256": self._sha256}

    @staticmethod
    def _download_official() -> Path:
        import keras  # noqa: PLC0415

        # Keras keeps the official download location private; reuse it rather than copy it.
        from keras.src.applications.mobilenet_v2 import BASE_WEIGHT_PATH  # noqa: PLC0415

        try:
            return Path(
                keras.utils.get_file(
                    OFFICIAL_WEIGHTS_FILE,
                    BASE_WEIGHT_PATH + OFFICIAL_WEIGHTS_FILE,
                    cache_subdir="models",
                    file_hash=KNOWN_WEIGHTS_SHA256[OFFICIAL_WEIGHTS_FILE],
                )
            )
        except Exception as error:
            raise DatasetError(
                f"Could not download the official ImageNet weights ({error}). Without "
                "internet access, set weights_source to a local or s3:// copy of a "
                "MobileNetV2 no-top .h5 file."
            ) from error

    def _check_file(self, weights_file: Path, expected_sha256: str | None) -> None:
        if not weights_file.is_file():
            raise self._missing()
        with weights_file.open("rb") as handle:
            if handle.read(len(HDF5_SIGNATURE)) != HDF5_SIGNATURE:
                raise WeightsFileError(
                    f"Weights file {self._source} is not a readable MobileNetV2 no-top Keras "
                    ".h5 file (no HDF5 signature): point weights_source at one."
                )
        if expected_sha256 and sha256_of(weights_file) != expected_sha256:
            raise WeightsFileError(
                f"Weights file {self._source} does not match the expected sha256 "
                f"{expected_sha256}: replace the file or fix weights_sha256."
            )
        self._check_layers(weights_file)

    def _check_layers(self, weights_file: Path) -> None:
        # Another network's .h5 (or another width of MobileNetV2) fails Keras's load only
        # after the run has started writing: its layer layout tells at once, in milliseconds.
        import h5py  # noqa: PLC0415 - Keras's own HDF5 reader, a dependency of it

        try:
            with h5py.File(weights_file, "r") as weights:
                names = {_text(name) for name in weights.attrs.get("layer_names", [])}
                last = weights[_LAST_CONV] if _LAST_CONV in weights else None
                kernel = last[_text(last.attrs["weight_names"][0])].shape if last else None
        except (OSError, KeyError, IndexError) as error:
            kernel, names = None, {str(error)}
        if not _MOBILENET_V2_LAYERS <= names or kernel != _LAST_CONV_KERNEL:
            raise WeightsFileError(
                f"Weights file {self._source} is not MobileNetV2 (alpha 1.0) no-top weights "
                f"(its layers are not MobileNetV2's): point weights_source at such a file."
            )

    def _read_verified(self, weights_file: Path, expected_sha256: str | None) -> list[np.ndarray]:
        self._check_file(weights_file, expected_sha256)
        try:
            return read_weights_file(weights_file)
        except (OSError, ValueError) as error:  # not HDF5, or not MobileNetV2's layers
            raise WeightsFileError(
                f"Weights file {self._source} is not a readable MobileNetV2 no-top Keras .h5 "
                f"file ({str(error).splitlines()[0][:120]}): point weights_source at one."
            ) from error
