"""Reporting: plots of the data and the results, previewed by kedro-viz."""

from fruits.pipelines.reporting.pipeline import create_pipeline

__all__ = ["create_pipeline"]
