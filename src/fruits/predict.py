"""`fruits-predict PHOTO...`: which fruit is this? Top classes, probabilities and a note.

Reads the backbone weights, ``pca_model``, ``fruit_classifier`` and ``fruit_info``
through the catalog of the chosen environment, and preprocesses each photo with the
pipeline's own function. By default no Spark is started: the two Spark ML models are
read from their saved files and applied with NumPy (same numbers, seconds faster
for a few photos); ``--spark`` runs them through Spark ML instead.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from kedro.config import MissingConfigException
from kedro.io import DatasetError

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class PredictionError(Exception):
    """A problem the user can fix; printed as one line."""


def parse_params(text: str | None) -> dict[str, str]:
    """``key=value,key=value`` as `kedro run --params` takes it."""
    params = {}
    for item in filter(None, (text or "").split(",")):
        key, separator, value = item.partition("=")
        if not separator:
            raise PredictionError(f"--params item {item!r} is not key=value.")
        params[key.strip()] = value.strip()
    return params


def load_project(project_path: Path, env: str, params: dict[str, str]) -> tuple[Any, dict]:
    """The project's catalog and parameters for ``env``, without running hooks (no Spark)."""
    from kedro.framework.project import settings  # noqa: PLC0415
    from kedro.framework.startup import bootstrap_project  # noqa: PLC0415

    if not (project_path / "pyproject.toml").is_file():
        raise PredictionError(
            f"{project_path} is not the fruits project: run from its folder or pass --project-path."
        )
    bootstrap_project(project_path)
    config_loader = settings.CONFIG_LOADER_CLASS(
        conf_source=str(project_path / settings.CONF_SOURCE),
        env=env,
        runtime_params=params,
        **settings.CONFIG_LOADER_ARGS,
    )
    try:
        credentials = config_loader["credentials"]
    except MissingConfigException:  # no credentials file: the usual AWS chain applies
        credentials = {}
    catalog = settings.DATA_CATALOG_CLASS.from_config(config_loader["catalog"], credentials)
    return catalog, config_loader["parameters"]


def embed_photos(photos: list[Path], weights: list[np.ndarray], input_size: int) -> np.ndarray:
    """The pipeline's preprocessing and backbone, on the photos (Keras runtime: no conversion)."""
    from fruits.pipelines.featurization.backbone import (  # noqa: PLC0415
        PortableBackbone,
        UnreadableImageError,
        load_embedder,
        preprocess_image,
    )

    batch = []
    for photo in photos:
        try:
            batch.append(preprocess_image(photo.read_bytes(), input_size))
        except FileNotFoundError as error:
            raise PredictionError(f"{photo}: no such file.") from error
        except IsADirectoryError as error:
            raise PredictionError(f"{photo}: a folder, not an image file.") from error
        except UnreadableImageError as error:
            raise PredictionError(f"{photo}: not a readable image ({error}).") from error
    embed = load_embedder(
        PortableBackbone("keras", input_size, weights), threads=os.cpu_count() or 1
    )
    return embed(np.stack(batch))


def load_local_models(catalog: Any) -> dict[str, Any]:
    """``pca_model`` and ``fruit_classifier`` read from their files for NumPy.

    Read first, before the backbone is built: a missing model is reported at once.
    """
    return {name: _local_model(catalog, name) for name in ("pca_model", "fruit_classifier")}


def classify_without_spark(
    catalog: Any, features: np.ndarray, local_models: dict[str, Any]
) -> tuple[np.ndarray, list[str]]:
    """Probabilities per class and the class names, with NumPy on the saved models."""
    reduced = local_models["pca_model"].transform(features)["vector"]
    output = local_models["fruit_classifier"].transform(reduced)
    return output["probability"], output["labels"]


def _local_model(catalog: Any, name: str) -> Any:
    try:
        return catalog.get(name).load_without_spark()
    except FileNotFoundError as error:
        raise PredictionError(
            f"No {name} at {error.filename or catalog.get(name)}: run `kedro run` for this "
            "environment first (or pass --params=data_root=<where the outputs are>)."
        ) from error


def classify_with_spark(
    catalog: Any, features: np.ndarray, local_models: dict[str, Any]
) -> tuple[np.ndarray, list[str]]:
    """The same through Spark ML (starts a local Spark session)."""
    from pyspark.sql import SparkSession  # noqa: PLC0415

    from fruits.pipelines.classification.nodes import to_pca_vectors  # noqa: PLC0415
    from fruits.pipelines.reduction.nodes import project_features  # noqa: PLC0415

    spark = (
        SparkSession.builder.master("local[*]").config("spark.ui.enabled", "false").getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    rows = [(str(i), "", None, vector.tolist()) for i, vector in enumerate(features)]
    frame = spark.createDataFrame(
        rows, "path string, label string, split string, features array<float>"
    )
    classifier = catalog.load("fruit_classifier")
    scored = classifier.transform(
        to_pca_vectors(project_features(frame, catalog.load("pca_model")))
    )
    ordered = sorted(scored.select("path", "probability").collect(), key=lambda row: int(row.path))
    return np.array([row.probability.toArray() for row in ordered]), classifier.stages[
        -1
    ].getLabels()


def top_classes(
    probabilities: np.ndarray, labels: list[str], fruit_info: Any, top: int
) -> list[list[dict[str, Any]]]:
    """The ``top`` classes of each photo, most probable first, with the fruit's information."""
    info = {row["label"]: row for row in fruit_info.to_dict("records")}
    results = []
    for row in probabilities:
        order = np.argsort(row)[::-1][:top]
        results.append(
            [
                {
                    "label": labels[i],
                    "probability": float(row[i]),
                    **{k: v for k, v in info.get(labels[i], {}).items() if k != "label"},
                }
                for i in order
            ]
        )
    return results


def render_text(photos: list[Path], results: list[list[dict[str, Any]]]) -> str:
    lines = []
    for photo, classes in zip(photos, results, strict=True):
        lines.append(str(photo))
        for rank, guess in enumerate(classes, start=1):
            about = " - ".join(filter(None, [guess.get("family"), guess.get("note")]))
            lines.append(f"  {rank}. {guess['label']:<22} {guess['probability']:7.2%}  {about}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Console entry point; returns the exit code."""
    parser = argparse.ArgumentParser(prog="fruits-predict", description=__doc__.split("\n")[0])
    parser.add_argument("photos", nargs="+", type=Path, help="image files (JPEG or PNG)")
    parser.add_argument("--env", default="local", help="Kedro environment whose catalog to use")
    parser.add_argument("--params", help="run-time params, e.g. data_root=/tmp/out")
    parser.add_argument("--project-path", type=Path, default=Path.cwd())
    parser.add_argument("--top", type=int, default=3, help="classes shown per photo")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--spark", action="store_true", help="apply the models with Spark ML")
    args = parser.parse_args(argv)
    logging.getLogger("kedro").setLevel(logging.WARNING)
    # Keras warns about retracing when one process embeds several times: noise for a user.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    started = time.perf_counter()
    # stdout carries the answer only (a JSON consumer reads it): whatever Kedro, Keras or
    # TensorFlow print while loading goes to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        try:
            catalog, parameters = load_project(
                args.project_path.resolve(), args.env, parse_params(args.params)
            )
            local_models = load_local_models(catalog)
            features = embed_photos(
                args.photos,
                catalog.load("backbone_weights"),
                parameters["featurization"]["input_size"],
            )
            classify = classify_with_spark if args.spark else classify_without_spark
            probabilities, labels = classify(catalog, features, local_models)
            results = top_classes(probabilities, labels, catalog.load("fruit_info"), args.top)
        except PredictionError as error:
            print(f"fruits-predict: {error}", file=sys.stderr)
            return 2
        except DatasetError as error:  # e.g. weights missing or not matching their sha256
            print(f"fruits-predict: {str(error).strip().splitlines()[-1]}", file=sys.stderr)
            return 2
    elapsed = time.perf_counter() - started
    mode = "Spark ML" if args.spark else "NumPy on the saved Spark ML models, no Spark started"
    if args.json:
        print(json.dumps([
            {"photo": str(photo), "top": classes}
            for photo, classes in zip(args.photos, results, strict=True)
        ], indent=2))  # fmt: skip
    else:
        print(render_text(args.photos, results))
    print(
        f"({len(args.photos)} photo(s) in {elapsed:.1f} s; models applied with {mode})",
        file=sys.stderr,
    )
    return 0


def run() -> None:
    """`fruits-predict` console script."""
    sys.exit(main())
