"""`fruits-ec2`: the command line of the single-instance launcher (``fruits.apps.ec2``).

Arguments are checked before anything is built, credentials and the bucket before
anything is uploaded; every problem is one line on stderr (exit 2), Ctrl-C one line
(exit 130), tracebacks only with ``--verbose``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from fruits.apps import ec2
from fruits.apps.aws import _client
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

NEEDED_FILES = (
    "pyproject.toml",
    "requirements.lock",
    str(ec2.artifacts.CLOUD_GLOBALS),
    str(ec2.artifacts.AWS_GLOBALS),
    str(ec2.USER_DATA_SCRIPT),
    str(ec2.INSTANCE_POLICY),
)

_EPILOG = (
    "Before building anything, `run` checks the arguments, the project folder, the AWS "
    "credentials (STS GetCallerIdentity) and the bucket. Exit status: 0 done; 1 `kedro package` "
    "failed; 2 a bad argument or an AWS error, told in one line on stderr (--verbose: with the "
    "traceback); 130 interrupted (Ctrl-C)."
)


def _instance_type(text: str) -> str:
    try:
        return ec2.require_x86_instance_type(text.strip())
    except FruitsInputError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def _run_id(text: str) -> str:
    if not text.replace("T", "").replace("Z", "").isdigit():
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a run id: give the id `fruits-ec2 run` printed (e.g. "
            "20261129T221500Z), or leave --run-id out for the latest run."
        )
    return text


def _parser() -> argparse.ArgumentParser:
    parser = LauncherParser(
        prog="fruits-ec2",
        description=f"{ec2.__doc__}",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(
        dest="command", required=True, title="commands", metavar="{run,status,logs}"
    )
    run = commands.add_parser(
        "run",
        help="build, upload and launch one instance that runs the pipelines and terminates",
        description="Package the project, upload it to s3://BUCKET/PREFIX/artifacts/ and launch "
        "one EC2 instance that runs `kedro run --env ec2` once, uploads its log and terminates "
        "(--keep-alive: stays up).",
        epilog=_EPILOG,
    )
    status = commands.add_parser(
        "status", help="the state of a run (the latest by default)", epilog=_EPILOG
    )
    logs = commands.add_parser(
        "logs", help="print the log of a run (the latest by default)", epilog=_EPILOG
    )
    for command in (run, status, logs):
        add_place_arguments(command, "instance")
    for command in (status, logs):
        command.add_argument("--run-id", type=_run_id, help="the run (default: the latest)")
    run.add_argument(
        "--instance-type",
        default=ec2.DEFAULT_INSTANCE_TYPE,
        type=_instance_type,
        help="x86_64 EC2 instance type (default: %(default)s; BENCHMARKS.md sizes others)",
    )
    run.add_argument(
        "--spot", action="store_true", help="a one-time spot instance (cheaper, may be reclaimed)"
    )
    run.add_argument(
        "--keep-alive",
        action="store_true",
        help="stay up after the run, for a shell through SSM Session Manager; terminate it "
        "yourself",
    )
    run.add_argument(
        "--timeout-minutes",
        type=whole_number(10, 1440),
        default=240,
        help="safety timeout of the whole run, install included, 10 to 1440 (default: %(default)s)",
    )
    run.add_argument(
        "--pipelines",
        help="comma-separated pipelines to run, e.g. ingestion,featurization (default: all)",
    )
    run.add_argument(
        "--params",
        help="more `kedro run --params`, after the bucket's layout, e.g. reduction.k=50 or "
        "weights_source=s3a://BUCKET/PREFIX/models/<file>.h5",
    )
    run.add_argument(
        "--project-dir",
        type=Path,
        default=Path.cwd(),
        help="the project to package (default: the current folder)",
    )
    return parser


def _run(arguments: argparse.Namespace, progress: Progress) -> None:
    spec = ec2.InstanceSpec(
        bucket=arguments.bucket,
        prefix=arguments.prefix,
        region=arguments.region,
        instance_type=arguments.instance_type,
        spot=arguments.spot,
        keep_alive=arguments.keep_alive,
        timeout_minutes=arguments.timeout_minutes,
        pipelines=arguments.pipelines,
        extra_params=arguments.params,
        project_dir=arguments.project_dir,
    )
    check_project(spec.project_dir, NEEDED_FILES, spec.pipelines)
    ec2.check_run_params(spec)
    user_data = ec2.render_user_data(spec, (spec.project_dir / ec2.USER_DATA_SCRIPT).read_text())
    s3 = check_aws_access(spec.region, spec.bucket, spec.prefix)
    image_id = ec2.latest_image_id(_client("ssm", spec.region), spec.region)
    with tempfile.TemporaryDirectory() as staging:
        built = ec2.build_artifacts(spec.project_dir, Path(staging))
        progress.state = (
            f"the artifacts under {spec.artifacts_uri}/ may be incomplete (the next run "
            "replaces them); no instance was launched."
        )
        ec2.artifacts.upload_artifacts(s3, built, spec, spec.spark_settings)
    profile_created = ec2.ensure_instance_profile(_client("iam", spec.region), spec)
    ec2_client = _client("ec2", spec.region)
    group_id = ec2.ensure_security_group(ec2_client, spec)
    request = ec2.instance_request(spec, image_id, user_data, group_id)
    progress.state = (
        "the instance may have been launched: see `aws ec2 describe-instances --filters "
        f"Name=tag:fruits-run,Values={spec.run_id} --region {spec.region}`."
    )
    instance_id = ec2.run_instance(ec2_client, request, profile_created)
    ec2.write_launch_record(
        s3,
        spec,
        {"instance_id": instance_id, "instance_type": spec.instance_type,
         "region": spec.region, "spot": spec.spot, "keep_alive": spec.keep_alive},
    )  # fmt: skip
    print(  # noqa: T201
        f"run {spec.run_id}: instance {instance_id} ({spec.instance_type}) starting in "
        f"{spec.region}; follow it with `fruits-ec2 status --bucket {spec.bucket} --prefix "
        f"{spec.prefix} --run-id {spec.run_id}` and `fruits-ec2 logs ...`"
    )


def _follow(arguments: argparse.Namespace, progress: Progress) -> None:
    s3 = _client("s3", arguments.region)
    run_id = arguments.run_id or ec2.latest_run_id(
        s3, arguments.bucket, arguments.prefix, arguments.region
    )
    run_key = f"{arguments.prefix}/{ec2.RUNS_FOLDER}/{run_id}"

    def read(name: str) -> bytes | None:
        return ec2.read_run_file(s3, arguments.bucket, f"{run_key}/{name}", arguments.region)

    if arguments.command == "logs":
        log = read("run.log")
        if log is None:
            raise FruitsInputError(
                f"no log for run {run_id} yet (s3://{arguments.bucket}/{run_key}/run.log): the "
                "instance uploads it every minute once it has started; try again shortly."
            )
        sys.stdout.write(log.decode(errors="replace"))
        return
    launch, status = read(ec2.LAUNCH_RECORD), read("status.json")
    if launch is None and status is None:
        raise FruitsInputError(
            f"no run {run_id} under s3://{arguments.bucket}/{arguments.prefix}/{ec2.RUNS_FOLDER}/: "
            "give the id `fruits-ec2 run` printed."
        )
    # The instance's status first (its state, exit code), then what was launched.
    facts = {**json.loads(status or b'{"state": "launched"}'), **json.loads(launch or b"{}")}
    instance_id = facts.get("instance_id")
    if instance_id:
        facts["instance_state"] = ec2.instance_state(
            _client("ec2", arguments.region), instance_id, arguments.region
        )
    print(f"run {run_id}: " + ", ".join(f"{k} {v}" for k, v in facts.items()))  # noqa: T201


def _launch(arguments: argparse.Namespace, progress: Progress) -> None:
    if arguments.command == "run":
        _run(arguments, progress)
    else:
        _follow(arguments, progress)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (`fruits-ec2`); returns the exit status."""
    return run_launcher("fruits-ec2", _parser(), _launch, argv)
