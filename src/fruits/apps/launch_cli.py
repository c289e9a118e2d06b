"""What the AWS launchers' command lines share (`fruits-emr`, `fruits-ec2`): argument types
checked before anything is built, the parser printing one line, the project and AWS access
checks, and the run loop (one line and exit 2 for a problem, 130 on Ctrl-C, tracebacks only
with ``--verbose``).
"""

from __future__ import annotations

import argparse
import difflib
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

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


def bucket_arg(text: str) -> str:
    problem = bucket_name_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a valid S3 bucket name: {problem} (e.g. my-fruits-bucket)."
        )
    return text


def prefix_arg(text: str) -> str:
    parts = text.split("/")
    if not all(
        re.fullmatch(r"[A-Za-z0-9_.-]+", part) and part not in {".", ".."} for part in parts
    ):
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a usable prefix: give '/'-separated parts of letters, digits, '-', "
            "'_' and '.', without a leading or trailing '/' (e.g. fruits or team/fruits)."
        )
    return text


def region_arg(text: str) -> str:
    # Region names are lower case: EU-WEST-3 is eu-west-3.
    try:
        return require_eu_region(text.strip().lower())
    except RegionOutsideEUError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def whole_number(minimum: int, maximum: int | None = None) -> Any:
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


class LauncherParser(argparse.ArgumentParser):
    """argparse, with a usage error printed as one line (exit 2) instead of the usage."""

    def error(self, message: str) -> NoReturn:
        # The launcher's own messages end with their fix; argparse's get a pointer to --help.
        hint = "" if message.endswith(".") else f" (see `{self.prog} --help`)"
        self.exit(INPUT_ERROR_EXIT_CODE, f"{self.prog}: {message}{hint}\n")


def add_place_arguments(command: argparse.ArgumentParser, machine: str) -> None:
    """``--bucket``, ``--prefix``, ``--region`` and ``--verbose`` of a launcher's command;
    ``machine`` names what runs there ("cluster", "instance")."""
    command.add_argument(
        "--bucket",
        required=True,
        type=bucket_arg,
        help=f"the S3 bucket, in the {machine}'s EU region, for artifacts, inputs and results",
    )
    command.add_argument(
        "--prefix",
        default="fruits",
        type=prefix_arg,
        help="folder inside the bucket holding raw/, models/, data/, artifacts/ and logs/ "
        "(default: %(default)s)",
    )
    command.add_argument(
        "--region",
        default=DEFAULT_REGION,
        type=region_arg,
        help=f"AWS region of the {machine} and the bucket; EU regions only (GDPR) "
        "(default: %(default)s)",
    )
    command.add_argument("--verbose", action="store_true", help="show the traceback of an error")


def check_project(project: Path, needed: tuple[str, ...], pipelines: str | None) -> None:
    """What a launch needs from the project folder, before any AWS call or build."""
    missing = [name for name in needed if not (project / name).is_file()]
    if missing:
        raise FruitsInputError(
            f"--project-dir {project} is not the fruits project (no {missing[0]}): run "
            "the launcher from the project's folder or pass --project-dir."
        )
    if pipelines:
        known = {
            folder.name
            for folder in (project / "src" / "fruits" / "pipelines").glob("*/")
            if (folder / "__init__.py").is_file()
        } | {"__default__"}
        for name in pipelines.split(","):
            if name.strip() not in known:
                close = difflib.get_close_matches(name.strip(), sorted(known), n=1)
                fix = (
                    f"did you mean {close[0]}?" if close else f"known: {', '.join(sorted(known))}."
                )
                raise FruitsInputError(f"--pipelines: unknown pipeline '{name.strip()}': {fix}")


def check_aws_access(region: str, bucket: str, prefix: str) -> Any:
    """The credentials (STS GetCallerIdentity) and the bucket's prefix, the cheapest calls;
    returns the S3 client."""
    with aws_errors(f"sts:GetCallerIdentity in {region}"):
        _client("sts", region).get_caller_identity()
    s3 = _client("s3", region)
    with aws_errors(f"s3://{bucket}/{prefix}/", region):
        s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/", MaxKeys=1)
    return s3


@dataclass
class Progress:
    """What the launch has done on AWS so far, as told when it is interrupted."""

    state: str = "nothing was uploaded or created on AWS."


def run_launcher(
    prog: str,
    parser: argparse.ArgumentParser,
    launch: Callable[[argparse.Namespace, Progress], None],
    argv: list[str] | None,
) -> int:
    """Parse ``argv`` and run ``launch``; returns the exit status (see the module's doc)."""
    try:
        arguments = parser.parse_args(argv)
    except SystemExit as stop:  # --help (0), or a bad argument already told in one line (2)
        return stop.code if isinstance(stop.code, int) else INPUT_ERROR_EXIT_CODE
    progress = Progress()

    def say(line: str) -> None:
        print(f"{prog}: {line}", file=sys.stderr)  # noqa: T201

    try:
        launch(arguments, progress)
    except KeyboardInterrupt:
        if arguments.verbose:
            raise
        say(f"interrupted; {progress.state}")
        return INTERRUPTED_EXIT_CODE
    except FruitsInputError as error:
        if arguments.verbose:
            raise
        say(str(error))
        return INPUT_ERROR_EXIT_CODE
    except subprocess.CalledProcessError as error:
        if arguments.verbose:
            raise
        say(
            f"`kedro package` failed (exit {error.returncode}) in {arguments.project_dir}: its "
            "output is above; nothing was uploaded."
        )
        return 1
    return 0
