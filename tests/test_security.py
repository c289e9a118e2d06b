"""Security hygiene: no secrets in the repository, encrypted S3 writes on EMR."""

from __future__ import annotations

import re
import subprocess

import pytest

from fruits.config import ProjectConfigLoader
from fruits.settings import CONFIG_LOADER_ARGS
from tests.conftest import REPO

# AWS access key ids (long-term AKIA, temporary ASIA), a secret key assigned in config or
# code, and private keys.
SECRET_PATTERNS = {
    "AWS access key id": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "AWS secret access key": re.compile(
        r"(?i)aws_?secret_?access_?key\W{0,4}[=:]\W{0,4}[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])"
    ),
    "private key": re.compile(r"-----BEGIN (?:RSA |EC |OPENSSH |DSA )?PRIVATE KEY-----"),
}


def find_secrets(text: str) -> list[str]:
    return [name for name, pattern in SECRET_PATTERNS.items() if pattern.search(text)]


def test_the_scanner_finds_what_it_looks_for():
    # Built at run time, so that no key-shaped string sits in the repository.
    key_id = "AKIA" + "Q" * 16
    secret = "aws_secret_access_key = " + "a1B2/" * 8
    assert find_secrets(f"id={key_id}") == ["AWS access key id"]
    assert find_secrets(secret) == ["AWS secret access key"]
    assert find_secrets("-----BEGIN RSA " + "PRIVATE KEY-----") == ["private key"]
    assert find_secrets("AWS_ACCESS_KEY_ID=rehearsal") == []


def test_no_secret_in_any_tracked_file():
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.split(b"\0")
    found = {}
    for name in filter(None, tracked):
        content = (REPO / name.decode()).read_bytes()
        if b"\0" in content[:8000]:  # binary (images, weights): no text secrets
            continue
        hits = find_secrets(content.decode("utf-8", errors="replace"))
        if hits:
            found[name.decode()] = hits
    assert len(tracked) > 100
    assert found == {}


def test_no_credentials_in_the_configuration():
    for path in (REPO / "conf").rglob("*"):
        assert not path.name.startswith("credentials"), f"{path}: credentials in conf/"
    assert "conf/**/credentials*" in (REPO / ".gitignore").read_text()


@pytest.mark.parametrize("env", ["emr", "ec2"])
def test_aws_writes_to_s3_are_encrypted_server_side(env):
    config = ProjectConfigLoader(str(REPO / "conf"), env=env, **CONFIG_LOADER_ARGS)
    spark, encryption = config["spark"], config["globals"]["s3_encryption"]
    assert encryption["algorithm"] in ("AES256", "SSE-KMS")  # S3A names: AES256 = SSE-S3
    assert spark["spark.hadoop.fs.s3a.encryption.algorithm"] == encryption["algorithm"]
    assert "spark.hadoop.fs.s3a.encryption.key" in spark
    catalog = config["catalog"]
    fsspec_datasets = [
        name for name, entry in catalog.items()
        if isinstance(entry, dict)
        and entry.get("type", "").split(".")[-1] in (
            "JSONDataset", "FigureDataset", "SparkSnapshotDataset", "CSVDataset"
        )
    ]  # fmt: skip
    assert len(fsspec_datasets) >= 8
    for name in fsspec_datasets:
        extra = catalog[name]["fs_args"]["s3_additional_kwargs"]
        assert extra["ServerSideEncryption"] == encryption["s3_header"], name
    # Locally nothing is sent to S3: the same entries carry no encryption arguments.
    local = ProjectConfigLoader(str(REPO / "conf"), env="local", **CONFIG_LOADER_ARGS)
    assert local["catalog"]["explained_variance"]["fs_args"] == {}


def test_local_spark_listens_on_loopback_only(spark):
    """The local environment binds the driver to 127.0.0.1, whatever SPARK_LOCAL_IP says."""
    import psutil  # noqa: PLC0415

    conf = spark.sparkContext.getConf()
    assert conf.get("spark.driver.bindAddress") == "127.0.0.1"
    assert conf.get("spark.driver.host") == "127.0.0.1"
    jvm = psutil.Process(int(spark.sparkContext._jvm.ProcessHandle.current().pid()))
    listening = [c.laddr.ip for c in jvm.net_connections("inet") if c.status == psutil.CONN_LISTEN]
    assert listening and set(listening) <= {"127.0.0.1", "::ffff:127.0.0.1"}
