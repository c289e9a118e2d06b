"""Record the local Spark driver's class archive (``make setup``): one run of every
pipeline on the committed sample, into a temporary folder, whose JVM writes the classes
it loaded to ``.jars/cds`` (``fruits.spark.class_archive``). Later local runs start faster.

Usage: ``python -m fruits.apps.class_archive [name=value ...]`` (run-time parameters, such
as ``weights_source=...``). Nothing is done when the archive for this JDK and pyspark exists,
so ``make setup`` runs it every time (a JDK or pyspark upgrade records a new one).
"""

from __future__ import annotations

import logging
import sys
import tempfile
from pathlib import Path

from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from fruits.spark.class_archive import archive_file, record

PROJECT = Path(__file__).resolve().parents[3]
SAMPLE = PROJECT / "data" / "01_raw" / "fruits-360"


def main(argv: list[str] | None = None) -> int:
    """Record the archive if missing. Always exits 0: without an archive runs are only
    slower, and a failed recording (said in one line) must not stop the set-up."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logger = logging.getLogger(__name__)
    folder = PROJECT / ".jars" / "cds"
    existing = archive_file(folder)
    if existing is None or existing.is_file():
        logger.info("Spark driver class archive: %s", existing or "none (no Java found)")
        return 0
    params = dict(arg.split("=", 1) for arg in (sys.argv[1:] if argv is None else argv))
    bootstrap_project(PROJECT)
    with tempfile.TemporaryDirectory(prefix="fruits-class-archive-") as data_root:

        def sample_run() -> None:
            runtime = {"raw_images_path": str(SAMPLE), "data_root": data_root, **params}
            with KedroSession.create(
                project_path=PROJECT, env="local", runtime_params=runtime
            ) as session:
                session.run()

        try:
            archive = record(folder, sample_run)
        except Exception as error:  # noqa: BLE001 - an optional speed-up: say it, go on
            logger.warning("No Spark driver class archive (runs start ~5 s slower): %s", error)
            return 0
    logger.info("Spark driver class archive: %s", archive)
    return 0


if __name__ == "__main__":
    sys.exit(main())
