"""`fruits-serve`: the prediction service and its web page, on the models of a Kedro run.

Loads once, from the chosen environment's catalog, the exported backbone (a TFLite
model run by LiteRT: no TensorFlow, no Spark), the PCA and the classifier (NumPy) and
the fruit information table, then answers over HTTP (FastAPI on uvicorn). Models
written later by ``kedro run`` are picked up without a restart. Listens on 127.0.0.1
unless told otherwise.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from functools import partial
from pathlib import Path
from typing import Any

import click

from fruits.errors import INPUT_ERROR_EXIT_CODE

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
with contextlib.redirect_stdout(sys.stderr):
    from kedro.framework.cli.project import run as kedro_run

    from fruits.cli import run_command, user_errors

_PARAMS_OPTION = next(option for option in kedro_run.params if option.name == "params")


@click.command(name="fruits-serve", help=__doc__.split("\n")[0])
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--env", default="local", show_default=True, help="Kedro environment to use.")
@click.option("--project-path", type=click.Path(path_type=Path), default=Path.cwd)
@click.option(
    "--interpreters",
    type=click.IntRange(min=1),
    default=os.cpu_count() or 1,
    show_default="the CPU count",
    help="Requests run through the backbone at the same time (one thread each).",
)
@click.option("--max-photo-mb", type=click.FloatRange(min=0.01), default=10.0, show_default=True)
@click.option("--max-batch", type=click.IntRange(min=1), default=16, show_default=True)
@click.option(
    "--max-megapixels",
    type=click.FloatRange(min=0.01),
    default=50.0,
    show_default=True,
    help="Larger images are refused from their header, before decoding.",
)
@click.option(
    "--reload-interval",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="Seconds between checks for newer models (0: only on POST /v1/reload).",
)
@click.option("--verbose", is_flag=True, help="Tracebacks for errors.")
def command(**arguments: Any) -> int:
    """Console command; see ``serve``."""
    return serve(**arguments)


command.params.insert(4, _PARAMS_OPTION)


def build_app(  # noqa: PLR0913 - one argument per command-line option
    *,
    env: str,
    params: dict[str, Any],
    project_path: Path,
    interpreters: int,
    max_photo_mb: float,
    max_batch: int,
    max_megapixels: float,
    reload_interval: float,
) -> Any:
    """The FastAPI application on the catalog's models (loaded now)."""
    from fruits.apps.models import load_catalog, load_predictor  # noqa: PLC0415
    from fruits.apps.service import ServiceSettings, create_app  # noqa: PLC0415
    from fruits.model_manifest import current_version  # noqa: PLC0415

    catalog = load_catalog(project_path.resolve(), env, params)
    settings = ServiceSettings(
        max_photo_bytes=int(max_photo_mb * 2**20),
        max_batch=max_batch,
        reload_interval=reload_interval,
    )
    load = partial(
        load_predictor,
        catalog,
        interpreters=interpreters,
        threads=1,
        max_pixels=int(max_megapixels * 1e6),
    )
    return create_app(load, partial(current_version, catalog), settings)


def serve(*, host: str, port: int, verbose: bool, **options: Any) -> int:
    """Load the models and serve until stopped; returns the exit code."""
    import uvicorn  # noqa: PLC0415

    _log_to_stderr()
    try:
        with contextlib.redirect_stdout(sys.stderr):
            app = build_app(**options)
    except Exception as error:
        lines = user_errors(error) or ([str(error)] if isinstance(error, ValueError) else [])
        if verbose or not lines:
            raise
        for line in lines:
            click.echo(f"fruits-serve: {line}", err=True)
        return INPUT_ERROR_EXIT_CODE
    predictor = app.state.holder.predictor
    logging.getLogger("fruits.serve").info(
        "Serving models %s (%d classes) on http://%s:%d/",
        predictor.version_tag,
        len(predictor.labels),
        host,
        port,
    )
    uvicorn.run(app, host=host, port=port, access_log=False, log_level="warning")
    return 0


def _log_to_stderr() -> None:
    service_logger = logging.getLogger("fruits.serve")
    if not service_logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s fruits-serve: %(message)s"))
        service_logger.addHandler(handler)
        service_logger.setLevel(logging.INFO)
        service_logger.propagate = False


def main(argv: list[str] | None = None) -> int:
    """Run the command on ``argv`` (default: the process's arguments); returns the exit code."""
    return run_command(command, "fruits-serve", argv)


def run() -> None:
    """`fruits-serve` console script."""
    sys.exit(main())
