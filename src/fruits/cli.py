"""Project CLI: Kedro's own ``run``, with errors the user can fix printed as one line each.

Kedro finds this module (``<package>.cli``) for ``kedro run`` and for the packaged
``fruits`` entry point that spark-submit runs on EMR. Every option is Kedro's; only
the default runner differs (``ThreadRunner``, see ``DEFAULT_RUNNER``).
"""

from __future__ import annotations

import re
import sys
from typing import Any

import click
from kedro.framework.cli.project import run as kedro_run
from kedro.validation import ParameterValidationError

from fruits.errors import INPUT_ERROR_EXIT_CODE, INTERRUPTED_EXIT_CODE, find_input_error

# Independent nodes run at the same time (the driver converts the backbone while Spark
# ingests the images); Spark jobs from several threads are safe, and ThreadRunner is the
# runner Kedro recommends for concurrency with Spark. On 2 cores the gain is within the
# machine's noise (BENCHMARKS.md lists both runners). `--runner SequentialRunner` runs
# one node at a time.
DEFAULT_RUNNER = "ThreadRunner"
# Kedro lists each parameter that fails validation as "- Parameter 'x': Failed to
# instantiate X for parameter 'x': <our message>"; the message (fruits.params) is enough.
_KEDRO_PARAMETER_PREFIX = re.compile(
    r"^- Parameter '[^']*': (Failed to instantiate \w+ for parameter '[^']*': )?"
)


def user_errors(error: BaseException) -> list[str]:
    """The lines to print for an error the user can fix; empty for any other error."""
    input_error = find_input_error(error)
    if input_error is not None:
        return [str(input_error)]
    if isinstance(error, ParameterValidationError):
        lines = str(error).splitlines()
        return [_KEDRO_PARAMETER_PREFIX.sub("", line) for line in lines if line.startswith("- ")]
    return []


def run_command(command: click.Command, prog_name: str, argv: list[str] | None) -> int:
    """Run one of the project's click commands: a usage error is its one line and exit 2,
    Ctrl-C one line and 130; otherwise the command's own exit code."""
    try:
        return command.main(args=argv, prog_name=prog_name, standalone_mode=False)
    except click.ClickException as error:
        error.show()
        return INPUT_ERROR_EXIT_CODE
    except click.exceptions.Abort:  # Ctrl-C
        click.echo(f"{prog_name}: interrupted", err=True)
        return INTERRUPTED_EXIT_CODE


def _run(**options: Any) -> Any:
    options["runner"] = options.get("runner") or DEFAULT_RUNNER
    try:
        return kedro_run.callback(**options)
    except KeyboardInterrupt:
        # PySpark's own Ctrl-C handler has cancelled the Spark jobs; every output is
        # written whole or not at all (the feature store's snapshot swap, Spark's committer).
        click.echo(
            "fruits: interrupted: outputs already written are complete; run again to finish",
            err=True,
        )
        sys.exit(INTERRUPTED_EXIT_CODE)
    except Exception as error:
        lines = user_errors(error)
        if not lines:
            raise
        for line in lines:
            click.echo(f"fruits: error: {line}", err=True)
        sys.exit(INPUT_ERROR_EXIT_CODE)


@click.group(name="fruits")
def cli() -> None:
    """Commands of the fruits project."""


run = click.Command(
    name="run",
    callback=_run,
    params=list(kedro_run.params),
    help=f"{kedro_run.help}\n\nThe default runner here is {DEFAULT_RUNNER}.",
)
cli.add_command(run)
