"""Spark settings from ``conf/<env>/spark.yml`` as Spark takes them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def as_spark_settings(settings: Mapping[str, Any]) -> dict[str, str]:
    """Every value as Spark's text: YAML booleans as ``true``/``false``, the rest ``str``."""
    return {
        key: str(value).lower() if isinstance(value, bool) else str(value)
        for key, value in settings.items()
    }
