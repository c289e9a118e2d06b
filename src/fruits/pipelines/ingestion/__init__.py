"""Ingestion: raw image files to one columnar ``images`` table."""

from fruits.pipelines.ingestion.pipeline import create_pipeline

__all__ = ["create_pipeline"]
