"""The project's `run` command: Kedro's, with ThreadRunner as the default runner."""

from typing import Any

import pytest
from click.testing import CliRunner

from fruits import cli


@pytest.fixture
def received(monkeypatch) -> dict[str, Any]:
    """Replace Kedro's run with a recorder of the options it would get."""
    options: dict[str, Any] = {}
    monkeypatch.setattr(cli.kedro_run, "callback", lambda **given: options.update(given))
    return options


def test_run_defaults_to_the_thread_runner(received):
    result = CliRunner().invoke(cli.cli, ["run", "--env", "local"])
    assert result.exit_code == 0, result.output
    assert received["runner"] == "ThreadRunner"
    assert received["env"] == "local"


def test_an_explicit_runner_is_kept(received):
    result = CliRunner().invoke(cli.cli, ["run", "--runner", "SequentialRunner"])
    assert result.exit_code == 0, result.output
    assert received["runner"] == "SequentialRunner"
