"""Before Spark starts: the azure environment refuses a non-EU region, any run Spark Connect."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from kedro.framework.session import KedroSession

from fruits.config import ProjectConfigLoader
from fruits.errors import FruitsInputError
from fruits.gdpr import AZURE_EU_REGIONS, RegionOutsideEUError, require_eu_azure_region
from fruits.settings import CONFIG_LOADER_ARGS
from tests.conftest import REPO

KEDRO = str(Path(sys.executable).with_name("kedro"))


@pytest.mark.parametrize("region", ["uksouth", "switzerlandnorth", "norwayeast", "eastus"])
def test_azure_regions_outside_the_eu_are_refused(region):
    with pytest.raises(RegionOutsideEUError, match=f"Azure region '{region}' is outside the EU"):
        require_eu_azure_region(region)


def test_azure_eu_regions_are_accepted_in_any_spelling():
    assert {require_eu_azure_region(region) for region in AZURE_EU_REGIONS} == AZURE_EU_REGIONS
    assert require_eu_azure_region("France Central") == "francecentral"


@pytest.fixture()
def conf_in_uk(tmp_path) -> Path:
    conf = tmp_path / "conf"
    shutil.copytree(REPO / "conf", conf)
    globals_file = conf / "azure" / "globals.yml"
    text = globals_file.read_text()
    assert "azure_region: francecentral" in text
    globals_file.write_text(text.replace("azure_region: francecentral", "azure_region: uksouth"))
    return conf


def no_spark(monkeypatch) -> list:
    started: list = []
    monkeypatch.setattr("fruits.hooks.SparkSession", type("NoSpark", (), {"builder": started}))
    return started


def test_session_refuses_a_non_eu_azure_region_before_spark(conf_in_uk, monkeypatch):
    started = no_spark(monkeypatch)
    with KedroSession.create(
        project_path=REPO, env="azure", conf_source=str(conf_in_uk)
    ) as session:
        with pytest.raises(RegionOutsideEUError, match="'uksouth' is outside the EU"):
            session.load_context()
    assert started == []


def run_kedro(*arguments: str, **environment: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [KEDRO, "run", *arguments], cwd=REPO, capture_output=True, text=True, check=False,
        env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", **environment},
    )  # fmt: skip


def one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("fruits: error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    return errors[0]


def test_cli_refuses_a_non_eu_azure_region(conf_in_uk):
    line = one_error_line(run_kedro("--env", "azure", "--conf-source", str(conf_in_uk)))
    assert "Azure region 'uksouth' is outside the EU" in line


def test_shipped_azure_configuration_is_in_the_eu_on_abfss():
    config = ProjectConfigLoader(str(REPO / "conf"), env="azure", **CONFIG_LOADER_ARGS)
    assert require_eu_azure_region(config["globals"]["azure_region"])
    catalog = config["catalog"]
    root = "abfss://fruits@fruitseudata.dfs.core.windows.net/fruits"
    assert catalog["raw_images"]["filepath"] == f"{root}/raw"
    assert catalog["images"]["filepath"].startswith(f"{root}/data/")
    assert catalog["explained_variance"]["fs_args"] == {"anon": False}


def test_a_spark_connect_session_is_refused_in_one_line(monkeypatch):
    """Databricks serverless and shared access mode give Spark Connect: no SparkContext."""
    monkeypatch.setenv("SPARK_REMOTE", "sc://127.0.0.1:15002")
    started = no_spark(monkeypatch)
    with KedroSession.create(project_path=REPO, env="local") as session:
        with pytest.raises(FruitsInputError, match="this one is Spark Connect"):
            session.load_context()
    assert started == []


def test_cli_refuses_spark_connect_with_one_line():
    line = one_error_line(run_kedro("--env", "local", SPARK_REMOTE="sc://127.0.0.1:15002"))
    assert "dedicated (single user) access mode" in line
