"""`fruits-emr`: the command line of the EMR launcher (``fruits.apps.emr``).

Arguments are checked before anything is built, credentials and the bucket before
anything is uploaded; every problem is one line on stderr (exit 2), Ctrl-C one line
(exit 130), tracebacks only with ``--verbose``.
"""

from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path

from fruits.apps import emr
from fruits.apps.aws import _client, aws_errors
from fruits.apps.launch_cli import (
    LauncherParser,
    Progress,
    add_place_arguments,
    check_aws_access,
    check_project,
    run_launcher,
    whole_number,
)
from fruits.errors import FruitsInputError


def _cluster_id(text: str) -> str:
    cluster_id = text.strip().upper()
    if not re.fullmatch(r"J-[0-9A-Z]{1,32}", cluster_id):
        raise argparse.ArgumentTypeError(
            f"'{text}' is not an EMR cluster id: give the j-XXXXXXXXXXXXX of "
            "`aws emr list-clusters --active` (or of the `deploy` that started it)."
        )
    return "j" + cluster_id[1:]


_EPILOG = (
    "Before building anything, the launcher checks the arguments, the project folder, the AWS "
    "credentials (STS GetCallerIdentity) and the bucket. Exit status: 0 done; 1 `kedro package` "
    "failed; 2 a bad argument or an AWS error, told in one line on stderr (--verbose: with the "
    "traceback); 130 interrupted (Ctrl-C)."
)


def _parser() -> argparse.ArgumentParser:
    summary, _, details = __doc__.partition("\n\n")
    parser = LauncherParser(
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
        add_place_arguments(command, "cluster")
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
    deploy.add_argument(
        "--instance-type",
        default="m5.xlarge",
        help="EC2 instance type of every node (default: %(default)s)",
    )
    deploy.add_argument(
        "--core-nodes",
        type=whole_number(1),
        default=2,
        help="on-demand core nodes (default: %(default)s)",
    )
    deploy.add_argument(
        "--spot-task-nodes",
        type=whole_number(0),
        default=0,
        help="extra task nodes on spot instances (default: %(default)s)",
    )
    deploy.add_argument(
        "--idle-timeout",
        type=whole_number(60, 604800),
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


# What the launch needs in the project folder.
NEEDED_FILES = ("pyproject.toml", "requirements.lock", "conf/cloud/globals.yml",
                "conf/aws/globals.yml", "bootstrap/emr_bootstrap.sh",
                "bootstrap/emr_step.py")  # fmt: skip
# The states in which a cluster accepts steps.
_LIVE_STATES = frozenset({"STARTING", "BOOTSTRAPPING", "RUNNING", "WAITING"})


def _check_project(spec: emr.ClusterSpec) -> None:
    """What the launch needs from the project folder, before any AWS call or build."""
    check_project(spec.project_dir, NEEDED_FILES, spec.pipelines)
    emr.emr_requirements((spec.project_dir / "requirements.lock").read_text())


def _launch(arguments: argparse.Namespace, progress: Progress) -> None:
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
    s3 = check_aws_access(spec.region, spec.bucket, spec.prefix)
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


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (`fruits-emr`); returns the exit status."""
    return run_launcher("fruits-emr", _parser(), _launch, argv)
