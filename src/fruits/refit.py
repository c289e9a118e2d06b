"""When to refit a model: digests of a model's input, and the refit policies."""

from __future__ import annotations

from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from fruits.errors import FruitsInputError

# on_change: refit only when the input rows or the settings changed; always: every run.
REFIT_POLICIES = ("on_change", "always")


def check_refit_policy(name: str, refit: str) -> None:
    """Refuse an unknown policy for the parameter ``name``."""
    if refit not in REFIT_POLICIES:
        raise FruitsInputError(f"Unknown {name} {refit!r}: use one of {', '.join(REFIT_POLICIES)}.")


def frame_digest(frame: DataFrame, columns: list[str]) -> str:
    """An order-independent digest of ``frame``'s rows over ``columns``.

    A count and an exact (decimal) sum of per-row hashes: the same rows in any order and
    partitioning give the same digest; any changed, added or removed row changes it.
    """
    summary = frame.select(
        F.count("*").alias("rows"),
        F.sum(F.xxhash64(*columns).cast("decimal(38,0)")).alias("hash_sum"),
    ).first()
    return f"{summary['rows']}:{summary['hash_sum']}"


def reuses_previous(
    refit: str,
    previous_model: Any | None,
    previous_report: dict[str, Any] | None,
    digest: str,
    settings: dict[str, Any],
) -> bool:
    """Whether ``on_change`` keeps the last run's model: same input digest and settings.

    ``previous_report`` is the report saved with that model, holding ``input_digest``
    and ``settings`` as this run would record them.
    """
    previous = previous_report or {}
    return (
        refit == "on_change"
        and previous_model is not None
        and previous.get("input_digest") == digest
        and previous.get("settings") == settings
    )
