"""Record the local Spark driver's class archive (``make setup``): one run of every
pipeline on the committed sample, into a temporary folder, whose JVM writes the classes
it loaded to ``.jars/cds`` (``fruits.spark.class_archive``). Later local runs start faster.

Usage: ``python -m fruits.apps.class_archive [name=value ...]`` (run-time parameters, such
as ``weights_source=...``). Nothing is done when the archive for this JDK and pyspark exists.
"""

from __future__ import annotations

import logging
import sys
import tempfile
from pathlib import Path

from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from fruits.spark.class_archive import record

PROJECT = Path(__file__).resolve().parents[3]
SAMPLE = PROJECT / "data" / "01_raw" / "fruits-360"


def main(argv: list[str] | None = None) -> int:
    """Record the archive if missing; exit 0 (a run without archive is only slower)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    params = dict(arg.split("=", 1) for arg in (sys.argv[1:] if argv is None else argv))
    bootstrap_project(PROJECT)
    with tempfile.TemporaryDirectory(prefix="fruits-class-archive-") as data_root:

        def sample_run() -> None:
            runtime = {"raw_images_path": str(SAMPLE), "data_root": data_root, **params}
            with KedroSession.create(
                project_path=PROJECT, env="local", runtime_params=runtime
            ) as session:
                session.run()

        archive = record(PROJECT / ".jars" / "cds", sample_run)
    logging.getLogger(__name__).info(
        "Spark driver class archive: %s", archive or "none (no Java found)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
