"""`fruits-emr`: the command line of the EMR launcher (``fruits.apps.emr``).

Arguments are checked before anything is built, credentials and the bucket before
anything is uploaded; every problem is one line on stderr (exit 2), Ctrl-C one line
(exit 130), tracebacks only with ``--verbose``.
"""

from __future__ import annotations

import argparse
import difflib
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from fruits.apps import emr
from fruits.apps.aws import _client, aws_errors
from fruits.errors import INPUT_ERROR_EXIT_CODE, INTERRUPTED_EXIT_CODE, FruitsInputError
from fruits.gdpr import DEFAULT_REGION, RegionOutsideEUError, require_eu_region

# S3 general purpose bucket naming rules:
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
_BUCKET_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
_BUCKET_RULES: tuple[tuple[Callable[[str], bool], str], ...] = (
    (
        lambda name: re.match(r"s3a?://", name, re.IGNORECASE) is not None,
        "give the bucket's name alone, without s3:// (the path inside goes to --prefix)",
    ),
    (
        lambda name: "/" in name,
        "a bucket name has no '/' (the path inside the bucket goes to --prefix)",
    ),
    (
        lambda name: not 3 <= len(name) <= 63,  # noqa: PLR2004 - S3's limits
        "a bucket name is 3 to 63 characters long",
    ),
    (
        lambda name: re.search(r"[^a-z0-9.-]", name) is not None,
        "a bucket name holds only lower-case letters, digits, '.' and '-'",
    ),
    (
        lambda name: not (name[0].isalnum() and name[-1].isalnum()),
        "a bucket name begins and ends with a letter or a digit",
    ),
    (lambda name: ".." in name, "a bucket name has no two adjacent periods"),
    (
        lambda name: re.fullmatch(r"\d+\.\d+\.\d+\.\d+", name) is not None,
        "a bucket name is not formatted as an IP address",
    ),
    (
        lambda name: (
            name.startswith(_BUCKET_RESERVED_PREFIXES) or name.endswith(_BUCKET_RESERVED_SUFFIXES)
        ),
        f"AWS reserves names starting with {', '.join(_BUCKET_RESERVED_PREFIXES)} "
        f"or ending with {', '.join(_BUCKET_RESERVED_SUFFIXES)}",
    ),
)


def bucket_name_problem(name: str) -> str | None:
    """What breaks S3's bucket naming rules in ``name`` (None: a valid name)."""
    return next((problem for breaks, problem in _BUCKET_RULES if breaks(name)), None)


def _bucket(text: str) -> str:
    problem = bucket_name_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a valid S3 bucket name: {problem} (e.g. my-fruits-bucket)."
        )
    return text


def _prefix(text: str) -> str:
    parts = text.split("/")
    if not all(
        re.fullmatch(r"[A-Za-z0-9_.-]+", part) and part not in {".", ".."} for part in parts
    ):
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a usable prefix: give '/'-separated parts of letters, digits, '-', "
            "'_' and '.', without a leading or trailing '/' (e.g. fruits or team/fruits)."
        )
    return text


def _region(text: str) -> str:
    # Region names are lower case: EU-WEST-3 is eu-west-3.
    try:
        return require_eu_region(text.strip().lower())
    except RegionOutsideEUError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def _cluster_id(text: str) -> str:
    cluster_id = text.strip().upper()
    if not re.fullmatch(r"J-[0-9A-Z]{1,32}", cluster_id):
        raise argparse.ArgumentTypeError(
            f"'{text}' is not an EMR cluster id: give the j-XXXXXXXXXXXXX of "
            "`aws emr list-clusters --active` (or of the `deploy` that started it)."
        )
    return "j" + cluster_id[1:]


def _whole_number(minimum: int, maximum: int | None = None) -> Any:
    allowed = f"from {minimum} to {maximum}" if maximum is not None else f"of at least {minimum}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"'{text}' is refused: give a whole number {allowed}.")
        return value

    return parse


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error printed as one line (exit 2) instead of the usage."""

    def error(self, message: str) -> NoReturn:
        # The launcher's own messages end with their fix; argparse's get a pointer to --help.
        hint = "" if message.endswith(".") else f" (see `{self.prog} --help`)"
        self.exit(INPUT_ERROR_EXIT_CODE, f"{self.prog}: {message}{hint}\n")


_EPILOG = (
    "Before building anything, the launcher checks the arguments, the project folder, the AWS "
    "credentials (STS GetCallerIdentity) and the bucket. Exit status: 0 done; 1 `kedro package` "
    "failed; 2 a bad argument or an AWS error, told in one line on stderr (--verbose: with the "
    "traceback); 130 interrupted (Ctrl-C)."
)


def _parser() -> argparse.ArgumentParser:
    summary, _, details = __doc__.partition("\n\n")
    parser = _Parser(
        prog="fruits-emr",
        description=f"{summary}\n\n{details}",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(
        dest="command", required=True, title="commands", metavar="{deploy,submit}"
    )
    deploy = commands.add_parser(
        "deploy",
        help="build, upload and start a cluster that runs the pipelines (transient by default)",
        description="Package the project, upload it to s3://BUCKET/PREFIX/artifacts/ and create "
        "an EMR cluster that runs the pipelines once and terminates (--keep-alive: stays up).",
        epilog=_EPILOG,
    )
    submit = commands.add_parser(
        "submit",
        help="upload the current project and add a run to a live cluster (--cluster-id)",
        description="Package the project, upload it to s3://BUCKET/PREFIX/artifacts/ and add "
        "a `kedro run --env emr` step to a live cluster (one started with `deploy --keep-alive`).",
        epilog=_EPILOG,
    )
    for command in (deploy, submit):
        command.add_argument(
            "--bucket",
            required=True,
            type=_bucket,
            help="the S3 bucket, in the cluster's EU region, for artifacts, inputs and results",
        )
        command.add_argument(
            "--prefix",
            default="fruits",
            type=_prefix,
            help="folder inside the bucket holding raw/, models/, data/, artifacts/ and logs/ "
            "(default: %(default)s)",
        )
        command.add_argument(
            "--region",
            default=DEFAULT_REGION,
            type=_region,
            help="AWS region of the cluster and the bucket; EU regions only (GDPR) "
            "(default: %(default)s)",
        )
        command.add_argument(
            "--pipelines",
            help="comma-separated pipelines to run, e.g. ingestion,featurization (default: all)",
        )
        command.add_argument(
            "--project-dir",
            type=Path,
            default=Path.cwd(),
            help="the project to package (default: the current folder)",
        )
        command.add_argument(
            "--verbose", action="store_true", help="show the traceback of an error"
        )
    deploy.add_argument(
        "--instance-type",
        default="m5.xlarge",
        help="EC2 instance type of every node (default: %(default)s)",
    )
    deploy.add_argument(
        "--core-nodes",
        type=_whole_number(1),
        default=2,
        help="on-demand core nodes (default: %(default)s)",
    )
    deploy.add_argument(
        "--spot-task-nodes",
        type=_whole_number(0),
        default=0,
        help="extra task nodes on spot instances (default: %(default)s)",
    )
    deploy.add_argument(
        "--idle-timeout",
        type=_whole_number(60, 604800),
        default=3600,
        help="seconds idle after which EMR terminates the cluster, 60 to 604800 "
        "(default: %(default)s)",
    )
    deploy.add_argument(
        "--keep-alive",
        action="store_true",
        help="keep the cluster after the run (for `submit`); it still ends when idle",
    )
    deploy.add_argument(
        "--no-run", action="store_true", help="create the cluster only, without the run step"
    )
    submit.add_argument(
        "--cluster-id",
        required=True,
        type=_cluster_id,
        help="the live cluster (j-XXXXXXXXXXXXX) to add the run to",
    )
    return parser


# The states in which a cluster accepts steps.
_LIVE_STATES = frozenset({"STARTING", "BOOTSTRAPPING", "RUNNING", "WAITING"})


def _check_project(spec: emr.ClusterSpec) -> None:
    """What the launch needs from the project folder, before any AWS call or build."""
    project = spec.project_dir
    needed = ("pyproject.toml", "requirements.lock", "conf/aws/globals.yml",
              "bootstrap/emr_bootstrap.sh", "bootstrap/emr_step.py")  # fmt: skip
    missing = [name for name in needed if not (project / name).is_file()]
    if missing:
        raise FruitsInputError(
            f"--project-dir {project} is not the fruits project (no {missing[0]}): run "
            "fruits-emr from the project's folder or pass --project-dir."
        )
    emr.emr_requirements((project / "requirements.lock").read_text())
    if spec.pipelines:
        known = {
            folder.name
            for folder in (project / "src" / "fruits" / "pipelines").glob("*/")
            if (folder / "__init__.py").is_file()
        } | {"__default__"}
        for name in spec.pipelines.split(","):
            if name.strip() not in known:
                close = difflib.get_close_matches(name.strip(), sorted(known), n=1)
                fix = (
                    f"did you mean {close[0]}?" if close else f"known: {', '.join(sorted(known))}."
                )
                raise FruitsInputError(f"--pipelines: unknown pipeline '{name.strip()}': {fix}")


@dataclass
class _Progress:
    """What the launch has done on AWS so far, as told when it is interrupted."""

    state: str = "nothing was uploaded or created on AWS."


def _launch(arguments: argparse.Namespace, progress: _Progress) -> None:
    deploying = arguments.command == "deploy"
    spec = emr.ClusterSpec(
        bucket=arguments.bucket,
        prefix=arguments.prefix,
        region=arguments.region,
        pipelines=arguments.pipelines,
        project_dir=arguments.project_dir,
        **(
            {
                "instance_type": arguments.instance_type,
                "core_nodes": arguments.core_nodes,
                "spot_task_nodes": arguments.spot_task_nodes,
                "idle_timeout_seconds": arguments.idle_timeout,
                "keep_alive": arguments.keep_alive,
                "run_pipeline": not arguments.no_run,
            }
            if deploying
            else {}
        ),
    )
    # The project folder, then the cheapest AWS calls, then the request (from the project's
    # conf); the package is built only once they all passed.
    _check_project(spec)
    with aws_errors(f"sts:GetCallerIdentity in {spec.region}"):
        _client("sts", spec.region).get_caller_identity()
    s3 = _client("s3", spec.region)
    with aws_errors(f"s3://{spec.bucket}/{spec.prefix}/", spec.region):
        s3.list_objects_v2(Bucket=spec.bucket, Prefix=f"{spec.prefix}/", MaxKeys=1)
    emr_client = _client("emr", spec.region)
    if not deploying:
        cluster = f"cluster {arguments.cluster_id} in {spec.region}"
        with aws_errors(cluster):
            state = emr_client.describe_cluster(ClusterId=arguments.cluster_id)["Cluster"]["Status"]
        if state["State"] not in _LIVE_STATES:
            raise FruitsInputError(
                f"{cluster} is {state['State']}: steps go to a live cluster only; start one "
                "with `fruits-emr deploy --keep-alive`."
            )
    request = emr.cluster_request(spec) if deploying else emr.spark_step(spec)
    with tempfile.TemporaryDirectory() as staging:
        artifacts = emr.build_artifacts(arguments.project_dir, Path(staging))
        progress.state = (
            f"the artifacts under {spec.artifacts_uri}/ may be incomplete (the next deploy "
            f"replaces them); no {'cluster was created' if deploying else 'step was added'}."
        )
        emr.upload_artifacts(s3, artifacts, spec)
    if deploying:
        progress.state = (
            "the cluster may have been requested: see "
            f"`aws emr list-clusters --active --region {spec.region}`."
        )
        with aws_errors(f"emr:RunJobFlow in {spec.region}"):
            cluster_id = emr_client.run_job_flow(**request)["JobFlowId"]
        logs = f"s3://{spec.bucket}/{spec.prefix}/logs/"
        print(f"cluster {cluster_id} starting in {spec.region}; logs in {logs}")  # noqa: T201
    else:
        progress.state = (
            "the step may have been added: see "
            f"`aws emr list-steps --cluster-id {arguments.cluster_id} --region {spec.region}`."
        )
        with aws_errors(f"emr:AddJobFlowSteps on {arguments.cluster_id} in {spec.region}"):
            step_ids = emr_client.add_job_flow_steps(
                JobFlowId=arguments.cluster_id, Steps=[request]
            )
        print(f"step {step_ids['StepIds'][0]} added to {arguments.cluster_id}")  # noqa: T201


def _say(line: str) -> None:
    print(f"fruits-emr: {line}", file=sys.stderr)  # noqa: T201


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (`fruits-emr`); returns the exit status."""
    try:
        arguments = _parser().parse_args(argv)
    except SystemExit as stop:  # --help (0), or a bad argument already told in one line (2)
        return stop.code if isinstance(stop.code, int) else INPUT_ERROR_EXIT_CODE
    progress = _Progress()
    try:
        _launch(arguments, progress)
    except KeyboardInterrupt:
        if arguments.verbose:
            raise
        _say(f"interrupted; {progress.state}")
        return INTERRUPTED_EXIT_CODE
    except FruitsInputError as error:
        if arguments.verbose:
            raise
        _say(str(error))
        return INPUT_ERROR_EXIT_CODE
    except subprocess.CalledProcessError as error:
        if arguments.verbose:
            raise
        _say(
            f"`kedro package` failed (exit {error.returncode}) in {arguments.project_dir}: its "
            "output is above; nothing was uploaded."
        )
        return 1
    return 0
