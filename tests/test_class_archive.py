"""The local driver's class archive: recorded whole or not at all, then really used."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fruits.spark import class_archive
from fruits.spark.class_archive import RECORD_TO_VARIABLE, archive_file, java_options, record


def test_options_use_the_archive_only_when_it_exists(tmp_path, monkeypatch):
    monkeypatch.delenv(RECORD_TO_VARIABLE, raising=False)
    assert java_options(tmp_path) == ""
    archive = archive_file(tmp_path)
    archive.write_bytes(b"recorded")
    assert java_options(tmp_path).startswith(f"-XX:SharedArchiveFile={archive} ")
    monkeypatch.setenv(RECORD_TO_VARIABLE, str(tmp_path / "new.jsa"))
    assert java_options(tmp_path).startswith(f"-XX:ArchiveClassesAtExit={tmp_path / 'new.jsa'} ")


def test_the_archive_is_named_after_the_jvm_and_the_jars(tmp_path, monkeypatch):
    jars = tmp_path / "jars"
    jars.mkdir()
    (jars / "spark-core.jar").write_bytes(b"1")
    monkeypatch.setattr(class_archive, "_spark_jars", lambda: jars)
    before = archive_file(tmp_path)
    (jars / "delta.jar").write_bytes(b"2")
    assert archive_file(tmp_path) != before


def test_a_failed_recording_leaves_no_archive(tmp_path, monkeypatch):
    monkeypatch.delenv(RECORD_TO_VARIABLE, raising=False)

    def failing_run() -> None:
        # The JVM would start writing here; the run then fails.
        Path(java_options(tmp_path).split("=", 1)[1].split()[0]).write_bytes(b"half")
        raise RuntimeError("the representative run failed")

    with pytest.raises(RuntimeError):
        record(tmp_path, failing_run)
    assert not archive_file(tmp_path).exists()
    assert RECORD_TO_VARIABLE not in os.environ


def _spark_script(folder: Path, extra_options: str = "") -> str:
    return textwrap.dedent(
        f"""
        from pathlib import Path
        from pyspark.sql import SparkSession
        from fruits.spark.class_archive import java_options, record

        def run():
            options = java_options(Path({str(folder)!r})) + " {extra_options}"
            spark = (
                SparkSession.builder.master("local[1]")
                .config("spark.driver.extraJavaOptions", options)
                .config("spark.driver.bindAddress", "127.0.0.1")
                .config("spark.driver.host", "127.0.0.1")
                .config("spark.ui.enabled", "false")
                .getOrCreate()
            )
            assert spark.range(10).count() == 10

        print(record(Path({str(folder)!r}), run) if "{extra_options}" == "" else run())
        """
    )


def test_a_recorded_archive_serves_the_next_driver_s_classes(tmp_path):
    """Recorded by one driver, then the next one loads Spark's classes from it."""
    folder = tmp_path / "cds"
    subprocess.run([sys.executable, "-c", _spark_script(folder)], check=True, timeout=300)
    archive = archive_file(folder)
    assert archive.is_file()
    assert not list(folder.glob("*.partial"))
    loads = tmp_path / "class-loads.txt"
    script = _spark_script(folder, f"-Xlog:class+load=info:file={loads}")
    subprocess.run([sys.executable, "-c", script], check=True, timeout=300)
    spark_context = [
        line for line in loads.read_text().splitlines() if " org.apache.spark.SparkContext " in line
    ]
    assert spark_context, "SparkContext was never loaded"
    assert "shared objects file (top)" in spark_context[0]
