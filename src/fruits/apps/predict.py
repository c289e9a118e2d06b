"""`fruits-predict PHOTO...`: which fruit is this? Top classes, probabilities and a note.

Everything comes from the project's configuration and catalog for the chosen
environment: the backbone weights, ``pca_model``, ``fruit_classifier``, ``fruit_info``
and the featurization parameters (``--params`` as ``kedro run`` takes them). Each photo
goes through the pipeline's own preprocessing and backbone. By default no Spark is
started: the two saved Spark ML models are applied with NumPy (same numbers, seconds
faster for a few photos); ``--spark`` starts the project's Spark session (its
``spark.yml``) and applies them with Spark ML.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import click
import numpy as np
from kedro.io import DatasetError

from fruits.errors import FruitsInputError

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Importing Kedro's CLI configures logging from conf/logging.yml and says so: stdout
# carries the answer only (a JSON consumer reads it), so whatever Kedro prints goes to stderr.
with contextlib.redirect_stdout(sys.stderr):
    from kedro.framework.cli.project import run as kedro_run

    from fruits.cli import INPUT_ERROR_EXIT_CODE, user_errors

# `kedro run`'s own --params option: the same syntax and value types.
_PARAMS_OPTION = next(option for option in kedro_run.params if option.name == "params")


class PredictionError(FruitsInputError):
    """A problem the user can fix; printed as one line."""


def load_context(project_path: Path, env: str, params: dict[str, Any], with_spark: bool) -> Any:
    """The project's Kedro context for ``env``: configuration, parameters and catalog.

    With ``with_spark`` the project's hooks run as in ``kedro run`` (the Spark session
    of ``conf/<env>/spark.yml``); without, no hook runs and no JVM starts.
    """
    from kedro.framework.hooks.manager import _create_hook_manager  # noqa: PLC0415
    from kedro.framework.project import settings  # noqa: PLC0415
    from kedro.framework.session import KedroSession  # noqa: PLC0415
    from kedro.framework.startup import bootstrap_project  # noqa: PLC0415

    if not (project_path / "pyproject.toml").is_file():
        raise PredictionError(
            f"{project_path} is not the fruits project: run from its folder or pass --project-path."
        )
    metadata = bootstrap_project(project_path)
    if with_spark:
        session = KedroSession.create(project_path=project_path, env=env, runtime_params=params)
        return session.load_context()
    config_loader = settings.CONFIG_LOADER_CLASS(
        conf_source=str(project_path / settings.CONF_SOURCE),
        env=env,
        runtime_params=params,
        **settings.CONFIG_LOADER_ARGS,
    )
    return settings.CONTEXT_CLASS(
        package_name=metadata.package_name,
        project_path=project_path,
        config_loader=config_loader,
        hook_manager=_create_hook_manager(),
        env=env,
        runtime_params=params,
    )


def embed_photos(photos: list[Path], weights: list[np.ndarray], input_size: int) -> np.ndarray:
    """The pipeline's preprocessing and backbone, on the photos (Keras runtime: no conversion)."""
    from fruits.vision.backbone import PortableBackbone  # noqa: PLC0415
    from fruits.vision.embedder import load_embedder  # noqa: PLC0415
    from fruits.vision.images import UnreadableImageError, preprocess_image  # noqa: PLC0415

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
    """``pca_model`` and ``fruit_classifier`` read from their files, to apply with NumPy.

    Read first, before the backbone is built: a missing model is reported at once.
    """
    models = {}
    for name in ("pca_model", "fruit_classifier"):
        try:
            models[name] = catalog.get(name).load_without_spark()
        except FileNotFoundError as error:
            raise PredictionError(
                f"No {name} at {error.filename or catalog.get(name)}: run `kedro run` for this "
                "environment first (or pass --params=data_root=<where the outputs are>)."
            ) from error
    return models


def classify_without_spark(
    features: np.ndarray, local_models: dict[str, Any]
) -> tuple[np.ndarray, list[str]]:
    """Probabilities per class and the class names, with NumPy on the saved models."""
    reduced = local_models["pca_model"].transform(features)["vector"]
    output = local_models["fruit_classifier"].transform(reduced)
    return output["probability"], output["labels"]


def classify_with_spark(catalog: Any, features: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """The same through Spark ML, in the project's Spark session."""
    from pyspark.sql import SparkSession  # noqa: PLC0415

    from fruits.ml.classifier import to_pca_vectors  # noqa: PLC0415
    from fruits.ml.pca import project_features  # noqa: PLC0415

    spark = SparkSession.getActiveSession()
    rows = [(str(i), "", None, vector.tolist()) for i, vector in enumerate(features)]
    frame = spark.createDataFrame(
        rows, "path string, label string, split string, features array<float>"
    )
    classifier = catalog.load("fruit_classifier")
    scored = classifier.transform(
        to_pca_vectors(project_features(frame, catalog.load("pca_model")))
    )
    ordered = sorted(scored.select("path", "probability").collect(), key=lambda row: int(row.path))
    labels = classifier.stages[-1].getLabels()
    return np.array([row.probability.toArray() for row in ordered]), labels


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
    """One block per photo: its path, then one line per class."""
    lines = []
    for photo, classes in zip(photos, results, strict=True):
        lines.append(str(photo))
        for rank, guess in enumerate(classes, start=1):
            about = " - ".join(filter(None, [guess.get("family"), guess.get("note")]))
            lines.append(f"  {rank}. {guess['label']:<22} {guess['probability']:7.2%}  {about}")
    return "\n".join(lines)


def predict(
    photos: list[Path], context: Any, top: int, with_spark: bool
) -> list[list[dict[str, Any]]]:
    """The ``top`` classes of each photo, with the models of ``context``'s catalog."""
    catalog = context.catalog
    local_models = None if with_spark else load_local_models(catalog)
    input_size = context.params["featurization"].input_size
    features = embed_photos(photos, catalog.load("backbone_weights"), input_size)
    if with_spark:
        probabilities, labels = classify_with_spark(catalog, features)
    else:
        probabilities, labels = classify_without_spark(features, local_models)
    return top_classes(probabilities, labels, catalog.load("fruit_info"), top)


@click.command(name="fruits-predict", help=__doc__.split("\n")[0])
@click.argument("photos", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--env", default="local", show_default=True, help="Kedro environment to use.")
@click.option("--project-path", type=click.Path(path_type=Path), default=Path.cwd)
@click.option("--top", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--spark", "with_spark", is_flag=True, help="Apply the models with Spark ML.")
def command(**arguments: Any) -> int:
    """Console command; see ``main``."""
    return main_with(**arguments)


command.params.insert(2, _PARAMS_OPTION)


def main_with(  # noqa: PLR0913 - one argument per command-line option
    *,
    photos: tuple[Path, ...],
    env: str,
    params: dict[str, Any],
    project_path: Path,
    top: int,
    as_json: bool,
    with_spark: bool,
) -> int:
    """Predict and print; returns the exit code."""
    logging.getLogger("kedro").setLevel(logging.WARNING)
    # Keras warns about retracing when one process embeds several times: noise for a user.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    started = time.perf_counter()
    # stdout carries the answer only (a JSON consumer reads it): whatever Kedro, Keras or
    # TensorFlow print while loading goes to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        try:
            context = load_context(project_path.resolve(), env, params, with_spark)
            results = predict(list(photos), context, top, with_spark)
        except Exception as error:
            lines = user_errors(error)
            if isinstance(error, DatasetError) and not lines:  # e.g. weights not matching
                lines = [str(error).strip().splitlines()[-1]]
            if not lines:
                raise
            for line in lines:
                print(f"fruits-predict: {line}", file=sys.stderr)
            return INPUT_ERROR_EXIT_CODE
    elapsed = time.perf_counter() - started
    mode = "Spark ML" if with_spark else "NumPy on the saved Spark ML models, no Spark started"
    if as_json:
        output = [
            {"photo": str(p), "top": classes} for p, classes in zip(photos, results, strict=True)
        ]
        print(json.dumps(output, indent=2))
    else:
        print(render_text(list(photos), results))
    print(f"({len(photos)} photo(s) in {elapsed:.1f} s; models with {mode})", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command on ``argv`` (default: the process's arguments); returns the exit code."""
    try:
        return command.main(args=argv, prog_name="fruits-predict", standalone_mode=False)
    except click.ClickException as error:
        error.show()
        return error.exit_code


def run() -> None:
    """`fruits-predict` console script."""
    sys.exit(main())
