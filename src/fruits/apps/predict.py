"""`fruits-predict PHOTO...`: which fruit is this? Top classes, probabilities and a note.

Everything comes from the project's configuration and catalog for the chosen
environment (``--params`` as ``kedro run`` takes them): the backbone the pipeline
exported (``exported_backbone``, run by LiteRT: no TensorFlow import), ``pca_model``,
``fruit_classifier`` and ``fruit_info``. Each photo goes through the pipeline's own
preprocessing. By default no Spark is started: the two saved Spark ML models are applied
with NumPy (same numbers, seconds faster for a few photos); ``--spark`` starts the
project's Spark session (its ``spark.yml``) and applies them with Spark ML. A photo that
cannot be read or decoded is reported for itself; the others are still answered.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

import click
import numpy as np
from kedro.io import DatasetError

from fruits.apps.models import load_catalog, load_context, load_predictor
from fruits.errors import INPUT_ERROR_EXIT_CODE
from fruits.ml.fruit_predictor import PhotoAnswer

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
# Importing Kedro's CLI configures logging from conf/logging.yml and says so: stdout
# carries the answer only (a JSON consumer reads it), so whatever Kedro prints goes to stderr.
with contextlib.redirect_stdout(sys.stderr):
    from kedro.framework.cli.project import run as kedro_run

    from fruits.cli import run_command, user_errors

# `kedro run`'s own --params option: the same syntax and value types.
_PARAMS_OPTION = next(option for option in kedro_run.params if option.name == "params")


def read_photos(photos: list[Path]) -> tuple[list[bytes | None], list[str | None]]:
    """Each photo's bytes, or why it cannot be read (reported for that photo only)."""
    contents: list[bytes | None] = []
    problems: list[str | None] = []
    for photo in photos:
        try:
            contents.append(photo.read_bytes())
            problems.append(None)
        except FileNotFoundError:
            contents.append(None)
            problems.append("no such file")
        except IsADirectoryError:
            contents.append(None)
            problems.append("a folder, not an image file")
        except OSError as error:
            contents.append(None)
            problems.append(f"cannot be read ({error.strerror or error})")
    return contents, problems


def classify_with_spark(catalog: Any, features: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Class probabilities through Spark ML, in the project's Spark session."""
    from pyspark.sql import SparkSession  # noqa: PLC0415

    from fruits.ml.classifier import to_pca_vectors  # noqa: PLC0415
    from fruits.ml.pca import project  # noqa: PLC0415

    spark = SparkSession.getActiveSession()
    rows = [(str(i), "", None, vector.tolist()) for i, vector in enumerate(features)]
    frame = spark.createDataFrame(
        rows, "path string, label string, split string, features array<float>"
    )
    classifier = catalog.load("fruit_classifier")
    scored = classifier.transform(to_pca_vectors(project(frame, catalog.load("pca_model"))))
    ordered = sorted(scored.select("path", "probability").collect(), key=lambda row: int(row.path))
    labels = classifier.stages[-1].getLabels()
    return np.array([row.probability.toArray() for row in ordered]), labels


def predict(photos: list[Path], catalog: Any, top: int, with_spark: bool) -> list[PhotoAnswer]:
    """The ``top`` classes of each photo, or why it has none, with the catalog's models.

    The backbone is the one the pipeline exported (LiteRT: no TensorFlow import); the
    PCA and classifier are applied with NumPy, or with Spark ML when ``with_spark``.
    """
    contents, problems = read_photos(photos)
    if all(problems):  # nothing to predict: do not load the models
        return [PhotoAnswer(error=problem) for problem in problems]
    predictor = load_predictor(catalog, threads=os.cpu_count() or 1)
    readable = [content for content in contents if content is not None]
    classify = partial(classify_with_spark, catalog) if with_spark else None
    answers = iter(predictor.predict(readable, top, classify))
    return [PhotoAnswer(error=problem) if problem else next(answers) for problem in problems]


def render_text(photos: list[Path], answers: list[PhotoAnswer]) -> str:
    """One block per answered photo: its path, then one line per class."""
    lines = []
    for photo, answer in zip(photos, answers, strict=True):
        if answer.guesses is None:
            continue
        lines.append(str(photo))
        for rank, guess in enumerate(answer.guesses, start=1):
            about = " - ".join(filter(None, [guess.get("family"), guess.get("note")]))
            lines.append(f"  {rank}. {guess['label']:<22} {guess['probability']:7.2%}  {about}")
    return "\n".join(lines)


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
    started = time.perf_counter()
    # stdout carries the answer only (a JSON consumer reads it): whatever Kedro or Spark
    # print while loading goes to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        try:
            project = project_path.resolve()
            catalog = (
                load_context(project, env, params).catalog
                if with_spark
                else load_catalog(project, env, params)
            )
            answers = predict(list(photos), catalog, top, with_spark)
        except Exception as error:
            lines = user_errors(error)
            if isinstance(error, DatasetError) and not lines:  # e.g. a model not readable
                lines = [str(error).strip().splitlines()[-1]]
            if not lines:
                raise
            for line in lines:
                print(f"fruits-predict: {line}", file=sys.stderr)
            return INPUT_ERROR_EXIT_CODE
    elapsed = time.perf_counter() - started
    for photo, answer in zip(photos, answers, strict=True):
        if answer.error:
            print(f"fruits-predict: {photo}: {answer.error}", file=sys.stderr)
    if as_json:
        output = [
            {"photo": str(photo), "top": answer.guesses}
            if answer.guesses is not None
            else {"photo": str(photo), "error": answer.error}
            for photo, answer in zip(photos, answers, strict=True)
        ]
        print(json.dumps(output, indent=2))
    else:
        print(render_text(list(photos), answers))
    mode = "Spark ML" if with_spark else "NumPy on the saved Spark ML models, no Spark started"
    answered = sum(answer.guesses is not None for answer in answers)
    if not answered:
        return INPUT_ERROR_EXIT_CODE
    print(
        f"({answered} of {len(photos)} photo(s) answered in {elapsed:.1f} s; models with {mode})",
        file=sys.stderr,
    )
    return 0 if answered == len(photos) else INPUT_ERROR_EXIT_CODE


def main(argv: list[str] | None = None) -> int:
    """Run the command on ``argv`` (default: the process's arguments); returns the exit code."""
    return run_command(command, "fruits-predict", argv)


def run() -> None:
    """`fruits-predict` console script."""
    sys.exit(main())
