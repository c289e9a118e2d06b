"""When to refit a model: the reuse rule shared by the reduction and the classifier."""

from __future__ import annotations

from typing import Any


def reuses_previous(
    refit: str,
    previous_model: Any | None,
    previous_report: dict[str, Any] | None,
    settings: dict[str, Any],
) -> bool:
    """Whether ``on_change`` may keep the last run's model: it exists, same settings.

    ``previous_report`` is the report saved with that model, holding ``settings`` as
    this run would record them. What else must hold is each model's own rule.
    """
    previous = previous_report or {}
    return (
        refit == "on_change" and previous_model is not None and previous.get("settings") == settings
    )
