"""Entry point so that the packaged project runs as `fruits` or `python -m fruits`."""

from pathlib import Path

from kedro.framework.cli.utils import find_run_command
from kedro.framework.project import configure_project


def main(*args, **kwargs) -> None:
    """Run the project's `kedro run` command (used by spark-submit on EMR)."""
    package_name = Path(__file__).parent.name
    configure_project(package_name)
    run = find_run_command(package_name)
    run(*args, **kwargs)


if __name__ == "__main__":
    main()
