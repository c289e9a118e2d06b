"""A class-data-sharing archive for the local Spark driver: a faster start for every run.

A local run's JVM loads and verifies some 20,000 classes (Spark, Hadoop, Scala, Parquet)
before and while it works: about 5 s of a 26 s re-run on two cores. HotSpot's dynamic
AppCDS archive (JDK 13+) maps those classes from a file written once, after a
representative run (``record``). The file is only valid for the JVM and the classpath it
was made with, and a truncated one crashes the JVM, so it is named after both
(``archive_file``) and moved into place only once complete.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger(__name__)

# Set by ``record``: the JVM of the recording run writes its classes there at exit.
RECORD_TO_VARIABLE = "FRUITS_CLASS_ARCHIVE_RECORD_TO"
# HotSpot's own lines about the archive (e.g. a stale one it ignores) stay out of the run's
# output: the archive only ever makes a start faster.
_QUIET = "-Xlog:cds=off,cds+dynamic=off"


def _java() -> Path | None:
    """The ``java`` spark-submit launches: ``$JAVA_HOME/bin/java``, else the one on PATH."""
    home = os.environ.get("JAVA_HOME")
    found = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    return Path(found).resolve() if found and Path(found).exists() else None


def _spark_jars() -> Path:
    """The jars on the driver's class path: pyspark's ``jars`` folder."""
    import pyspark  # noqa: PLC0415

    return Path(pyspark.__file__).resolve().parent / "jars"


def archive_file(folder: Path) -> Path | None:
    """Where the archive for this JVM and this Spark's jars lives under ``folder``.

    The name is a digest of the JVM binary and of every jar on the class path (path,
    size, modification time): another JDK or pyspark gets another file. The jars Spark
    adds at run time (``spark.jars``: Delta's) are not archived and not part of it.
    None without Java.
    """
    java = _java()
    if java is None:
        return None
    digest = hashlib.sha256()
    for path in (java, *sorted(_spark_jars().glob("*.jar"))):
        state = path.stat()
        digest.update(f"{path}:{state.st_size}:{int(state.st_mtime)}\n".encode())
    return folder / f"spark-driver-{digest.hexdigest()[:16]}.jsa"


def java_options(folder: Path) -> str:
    """The driver JVM's options for the archive under ``folder``: use it when it exists,
    write it at exit when a recording asks for it, else nothing."""
    record_to = os.environ.get(RECORD_TO_VARIABLE)
    if record_to:
        return f"-XX:ArchiveClassesAtExit={record_to} {_QUIET}"
    archive = archive_file(folder)
    if archive is None or not archive.is_file():
        return ""
    return f"-XX:SharedArchiveFile={archive} -Xshare:auto {_QUIET}"


def record(folder: Path, representative_run: Callable[[], None]) -> Path | None:
    """Write the archive under ``folder`` from the classes ``representative_run`` loads.

    ``representative_run`` must start this process's Spark driver (whose options come from
    ``java_options``) and do a run's work; the driver is then stopped, its JVM writes the
    archive as it exits, and the file is moved into place only if that JVM exited cleanly
    (a truncated archive would crash every later run). Does nothing when the archive
    exists already.

    Returns:
        The archive, or None when there is no Java to make it for.
    """
    archive = archive_file(folder)
    if archive is None or archive.is_file():
        return archive
    archive.parent.mkdir(parents=True, exist_ok=True)
    partial = archive.with_name(f"{archive.name}.{os.getpid()}.partial")
    os.environ[RECORD_TO_VARIABLE] = str(partial)
    try:
        representative_run()
        exit_code = _stop_driver()
        if exit_code != 0 or not partial.is_file():
            raise RuntimeError(
                f"the recording JVM exited with {exit_code} and wrote no complete archive"
            )
        partial.replace(archive)  # atomic: a reader sees no file or a whole one
    finally:
        del os.environ[RECORD_TO_VARIABLE]
        partial.unlink(missing_ok=True)
    for stale in folder.glob("spark-driver-*.jsa"):
        if stale != archive:
            stale.unlink()  # made for another JDK or pyspark
    return archive


def _stop_driver() -> int | None:
    """Stop Spark and wait for its JVM to exit (it writes the archive on the way out).

    Returns:
        The JVM's exit code; None when this process did not launch it.
    """
    from pyspark import SparkContext  # noqa: PLC0415

    gateway = SparkContext._gateway
    if SparkContext._active_spark_context is not None:
        SparkContext._active_spark_context.stop()
    process = getattr(gateway, "proc", None)
    if gateway is not None:
        gateway.shutdown()
        SparkContext._gateway = None
        SparkContext._jvm = None
    if process is None:
        return None
    # The JVM exits when its stdin closes (PythonGatewayServer), then dumps.
    if process.stdin is not None:
        process.stdin.close()
    return process.wait(timeout=600)
