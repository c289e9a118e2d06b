"""In the AWS environments (emr, ec2), a run refuses to start outside the EU."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from kedro.framework.session import KedroSession

from fruits.config import ProjectConfigLoader
from fruits.gdpr import RegionOutsideEUError
from fruits.settings import CONFIG_LOADER_ARGS
from tests.conftest import REPO


@pytest.fixture()
def conf_in_us(tmp_path) -> Path:
    conf = tmp_path / "conf"
    shutil.copytree(REPO / "conf", conf)
    globals_file = conf / "aws" / "globals.yml"
    text = globals_file.read_text()
    assert "aws_region: eu-west-3" in text
    globals_file.write_text(text.replace("aws_region: eu-west-3", "aws_region: us-east-1"))
    return conf


def test_session_refuses_a_non_eu_region_before_spark(conf_in_us, monkeypatch):
    started = []
    monkeypatch.setattr("fruits.hooks.SparkSession", type("NoSpark", (), {"builder": started}))
    with KedroSession.create(project_path=REPO, env="emr", conf_source=str(conf_in_us)) as session:
        with pytest.raises(RegionOutsideEUError, match="'us-east-1' is outside the EU"):
            session.load_context()
    assert started == []


def test_cli_exits_non_zero_naming_the_region(conf_in_us):
    result = subprocess.run(
        [str(Path(sys.executable).with_name("kedro")), "run", "--env", "emr",
         "--conf-source", str(conf_in_us)],
        cwd=REPO, capture_output=True, text=True, check=False,
        env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"},
    )  # fmt: skip
    assert result.returncode != 0
    assert "'us-east-1' is outside the EU" in " ".join((result.stdout + result.stderr).split())


@pytest.mark.parametrize("env", ["emr", "ec2"])
def test_shipped_aws_configuration_is_in_the_eu(env):
    config = ProjectConfigLoader(str(REPO / "conf"), env=env, **CONFIG_LOADER_ARGS)
    assert config["globals"]["aws_region"] == "eu-west-3"
    catalog = config["catalog"]
    assert catalog["images"]["filepath"].startswith("s3a://fruits-eu-data/fruits/data/")
    assert catalog["raw_images"]["filepath"] == "s3a://fruits-eu-data/fruits/raw"
    assert catalog["backbone_weights"]["source"].startswith("s3a://fruits-eu-data/fruits/models/")
