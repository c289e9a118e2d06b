"""What the AWS launchers (`fruits-emr`, `fruits-ec2`) share: the S3 layout of the AWS
environments, their Spark settings, the packaged project, and its upload.

The layout lives in ``conf/cloud/globals.yml`` only, under the ``storage_root`` that
``conf/aws/globals.yml`` sets; these helpers read it with the bucket and prefix of a launch
in place of that root.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Protocol

from omegaconf import OmegaConf

from fruits.apps.aws import aws_errors
from fruits.errors import FruitsInputError
from fruits.spark.settings import as_spark_settings

# The run-time paths of the AWS environments, derived from their bucket and prefix.
RUN_PATHS = ("data_root", "raw_images_path", "weights_source", "spark_event_log")
# The layers of the configuration the AWS environments read (settings' "layers"): the layout
# under a storage root, then the AWS root, region and encryption.
CLOUD_GLOBALS = Path("conf") / "cloud" / "globals.yml"
AWS_GLOBALS = Path("conf") / "aws" / "globals.yml"


def _aws_globals(project_dir: Path) -> Any:
    return OmegaConf.merge(
        OmegaConf.load(project_dir / CLOUD_GLOBALS), OmegaConf.load(project_dir / AWS_GLOBALS)
    )


def s3_layout(project_dir: Path, s3_root: str) -> dict[str, str]:
    """``RUN_PATHS`` under ``s3_root``, as ``conf/cloud/globals.yml`` derives them."""
    layout = _aws_globals(project_dir)
    layout.storage_root = s3_root
    return {key: str(layout[key]) for key in RUN_PATHS}


def run_params(project_dir: Path, s3_root: str) -> str:
    """`kedro run --params` placing every dataset under ``s3_root``."""
    return ",".join(f"{key}={value}" for key, value in s3_layout(project_dir, s3_root).items())


def spark_settings(project_dir: Path, env: str, s3_root: str) -> dict[str, str]:
    """The Spark settings of ``env`` (``conf/base`` + its layers + ``conf/<env>``), with
    the paths under the configured storage root (the event log) moved under ``s3_root``."""
    from fruits.config import ProjectConfigLoader  # noqa: PLC0415 - the project's own merge
    from fruits.settings import CONFIG_LOADER_ARGS  # noqa: PLC0415

    loader = ProjectConfigLoader(str(project_dir / "conf"), env=env, **CONFIG_LOADER_ARGS)
    settings = as_spark_settings(loader["spark"])
    settings.pop("spark.app.name", None)
    configured_root = str(_aws_globals(project_dir).storage_root)
    return {key: value.replace(configured_root, s3_root) for key, value in settings.items()}


def _requirement_name(line: str) -> str:
    """The normalised project name of a requirement line (``Foo_Bar[x]==1 \\`` -> ``foo-bar``)."""
    name = re.split(r"[\s\[=<>!~;@\\]", line.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_requirements(lock_text: str, provided: tuple[str, ...] = ()) -> str:
    """The pins of ``requirements.lock`` to install on a machine, but those ``provided`` there.

    Each pin keeps its ``--hash`` continuation lines (installs use ``--require-hashes``); a
    removed pin goes with its own. A pin without a hash is refused: the machine would only
    find out after it started.
    """
    requirements: list[list[str]] = []
    continued = False
    for line in lock_text.splitlines():
        stripped = line.strip()
        if continued:
            requirements[-1].append(stripped)
        elif stripped and not stripped.startswith("#"):
            requirements.append([stripped])
        else:
            continue
        continued = stripped.endswith("\\")
    kept = [lines for lines in requirements if _requirement_name(lines[0]) not in provided]
    for lines in kept:
        if not any("--hash=" in part for part in lines):
            pin = lines[0].removesuffix("\\").strip()
            raise FruitsInputError(
                f"requirements.lock pins {pin} without a --hash (the machine installs with "
                "--require-hashes): regenerate the lock with `make lock`."
            )
    return "".join("\n    ".join(lines) + "\n" for lines in kept)


def package_project(project_dir: Path, output_dir: Path) -> list[Path]:
    """`kedro package`: the project's wheel and its conf tarball, copied to ``output_dir``."""
    subprocess.run(
        [str(Path(sys.executable).with_name("kedro")), "package"], cwd=project_dir, check=True
    )
    output_dir.mkdir(parents=True, exist_ok=True)
    wheels = sorted((project_dir / "dist").glob("fruits-*.whl"))
    return [
        Path(shutil.copy2(wheels[-1], output_dir)),
        Path(shutil.copy2(project_dir / "dist" / "conf-fruits.tar.gz", output_dir)),
    ]


class LaunchPlace(Protocol):
    """Where a launch keeps its files: a bucket and prefix in an (EU) region."""

    bucket: str
    prefix: str
    region: str


def upload_artifacts(
    s3_client: Any,
    artifacts: list[Path],
    place: LaunchPlace,
    settings: dict[str, str] | None = None,
) -> None:
    """Put every artifact under ``s3://<bucket>/<prefix>/artifacts/`` (a folder's files
    under its name), and create the Spark event log's folder of ``settings`` (Spark
    refuses to start when it does not exist)."""
    bucket, prefix, region = place.bucket, place.prefix, place.region
    for artifact in artifacts:
        files = sorted(artifact.iterdir()) if artifact.is_dir() else [artifact]
        folder = f"{artifact.name}/" if artifact.is_dir() else ""
        for file in files:
            key = f"{prefix}/artifacts/{folder}{file.name}"
            with aws_errors(f"s3://{bucket}/{key}", region):
                s3_client.upload_file(str(file), bucket, key)
    event_log = (settings or {}).get("spark.eventLog.dir")
    if event_log:
        folder = event_log.split(f"://{bucket}/", 1)[1].rstrip("/") + "/"
        with aws_errors(f"s3://{bucket}/{folder}"):
            s3_client.put_object(Bucket=bucket, Key=folder, ServerSideEncryption="AES256")
