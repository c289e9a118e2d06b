"""Azurite, the Azure Storage emulator, on 127.0.0.1 (a free port, in memory) for the module.

Azurite has no Data Lake (DFS) endpoint, so in the tests Spark reaches it through Hadoop's
WASB driver (serving the abfss:// paths of the azure environment: `fs.abfss.impl`), with the
emulator's well-known account and key, while the fsspec datasets use adlfs (the production
path) through AZURE_STORAGE_CONNECTION_STRING. The paths name the account's production-style
host without a port (`abfss://fruits@devstoreaccount1.blob.localhost/...`, as real ones have
none: kedro-datasets drops a port from Spark paths), and the JVM reaches Azurite's port as
its HTTP proxy; Azurite takes the account from that host name.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import DELTA_JARS, REHEARSAL_JVM_OPTIONS, REPO

AZURITE = REPO / "tools" / "azurite" / "node_modules" / ".bin" / "azurite-blob"
AZURE_JARS = REPO / ".jars" / "azure"
# Azurite's development account: a well-known public key, not a secret.
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
CONTAINER = "fruits"


@dataclass(frozen=True)
class Azurite:
    port: int

    @property
    def host(self) -> str:
        """The account's production-style host name, as the abfss:// paths carry it."""
        return f"{ACCOUNT}.blob.localhost"

    def root(self, prefix: str) -> str:
        return f"abfss://{CONTAINER}@{self.host}/{prefix}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{self.port}/{ACCOUNT};"
        )

    def filesystem(self):
        import adlfs  # noqa: PLC0415

        return adlfs.AzureBlobFileSystem(connection_string=self.connection_string)

    def spark_defaults(self, folder: Path) -> Path:
        """A SPARK_CONF_DIR whose spark-defaults.conf reaches this emulator (only that differs)."""
        folder.mkdir(parents=True, exist_ok=True)
        # Databricks' runtime has the Azure connector and Delta; here, their jars.
        jars = ",".join(str(jar) for jar in [*sorted(AZURE_JARS.glob("*.jar")), *DELTA_JARS])
        (folder / "spark-defaults.conf").write_text(
            f"spark.jars {jars}\n"
            "spark.driver.extraJavaOptions "
            f"-Dhttp.proxyHost=127.0.0.1 -Dhttp.proxyPort={self.port} {REHEARSAL_JVM_OPTIONS}\n"
            "spark.hadoop.fs.abfss.impl org.apache.hadoop.fs.azure.NativeAzureFileSystem\n"
            f"spark.hadoop.fs.azure.account.key.{self.host} {ACCOUNT_KEY}\n"
        )
        return folder


@pytest.fixture(scope="module")
def azurite(tmp_path_factory) -> Iterator[Azurite]:
    assert AZURITE.exists(), f"{AZURITE} missing: run `make setup` (npm ci in tools/azurite)."
    assert list(AZURE_JARS.glob("hadoop-azure-*.jar")), "run `make setup` (hadoop-azure jars)"
    process = subprocess.Popen(
        [str(AZURITE), "--blobHost", "127.0.0.1", "--blobPort", "0", "--inMemoryPersistence",
         "--skipApiVersionCheck", "--loose", "--silent"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        cwd=tmp_path_factory.mktemp("azurite"),  # its debug and lock files, if any
    )  # fmt: skip
    port, deadline, seen = None, time.monotonic() + 60, []
    while port is None:
        line = process.stdout.readline()
        seen.append(line)
        found = re.search(r"listens on http://127\.0\.0\.1:(\d+)", line)
        port = int(found[1]) if found else None
        assert process.poll() is None and time.monotonic() < deadline, "".join(seen)
    try:
        emulator = Azurite(port)
        emulator.filesystem().mkdir(CONTAINER)
        yield emulator
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
