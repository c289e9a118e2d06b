"""Which models a run left for the prediction apps, recorded once they are all written.

A ``kedro run`` writes ``exported_backbone`` early, ``pca_model`` later and
``fruit_classifier`` last, minutes apart on large inputs: a service that loaded what it
found meanwhile could pair a new PCA with the old classifier. The run's hook writes
``model_manifest`` (the digest of each model) when the run has succeeded; the service
loads a new version only once the manifest names it, and only if the files it loaded
are the ones named.
"""

from __future__ import annotations

from typing import Any

from fruits.errors import FruitsInputError

MODELS = ("exported_backbone", "pca_model", "fruit_classifier")
SPARK_ML_MODELS = ("pca_model", "fruit_classifier")


class ModelsMissingError(FruitsInputError):
    """The environment has no trained models (yet); the message says what to run."""


def missing(name: str, where: Any) -> ModelsMissingError:
    """The error for a model the catalog does not hold."""
    return ModelsMissingError(
        f"No {name} at {where}: run `kedro run` for this environment first (or pass "
        "--params=data_root=<where the outputs are>)."
    )


def load_local_models(catalog: Any) -> dict[str, Any]:
    """``pca_model`` and ``fruit_classifier`` read from their files, to apply with NumPy."""
    models = {}
    for name in SPARK_ML_MODELS:
        try:
            models[name] = catalog.get(name).load_without_spark()
        except FileNotFoundError as error:
            raise missing(name, error.filename or catalog.get(name)) from error
    return models


def digests_on_storage(catalog: Any) -> dict[str, str]:
    """The digest of each model as its files are now (the backbone's description only)."""
    backbone = catalog.get("exported_backbone")
    try:
        fingerprint = backbone.load_description()["fingerprint"]
    except FileNotFoundError as error:
        raise missing("exported_backbone", backbone) from error
    models = load_local_models(catalog)
    return {"backbone": fingerprint, **{name: models[name].digest for name in SPARK_ML_MODELS}}


def current_version(catalog: Any) -> dict[str, str]:
    """The version the last successful run recorded, else (older outputs) the files' own."""
    manifest = catalog.get("model_manifest")
    if manifest.exists():
        return manifest.load()
    return digests_on_storage(catalog)
