"""AWS calls of the launchers: clients with timeouts, and AWS errors as one line."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from fruits.errors import FruitsInputError
from fruits.gdpr import DEFAULT_REGION


class AwsCallError(FruitsInputError):
    """An AWS call refused or failed: one line naming the call's target and what to do."""


# Hints for the AWS error codes a launch meets most, by what the user can do about them.
_CREDENTIALS_REJECTED = frozenset(
    {
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidAccessKeyId",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "UnrecognizedClientException",
    }
)
_ACCESS_DENIED = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})


def _aws_hint(code: str, target: str, region: str) -> str:
    if code in _CREDENTIALS_REJECTED:
        return " (your AWS credentials were refused: renew them, e.g. `aws sso login`)"
    if code in _ACCESS_DENIED:
        return (
            " (bootstrap/iam/ holds the launchers' policies: launcher-policy.json for "
            "fruits-emr, ec2-launcher-policy.json for fruits-ec2)"
        )
    if code == "NoSuchBucket":
        bucket = target.removeprefix("s3://").split("/", 1)[0]
        return f" (create it in the cluster's region: `aws s3 mb s3://{bucket} --region {region}`)"
    return ""


def describe_aws_error(error: BaseException, target: str, region: str = DEFAULT_REGION) -> str:
    """One line for an AWS error met while working on ``target`` (a URI, a call, a cluster)
    in ``region``."""
    from botocore.exceptions import (  # noqa: PLC0415 - botocore only matters when launching
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
        ProfileNotFound,
    )

    # boto3's upload_file wraps the ClientError of its PutObject in an S3UploadFailedError.
    cause = error.__cause__ or error.__context__
    if not isinstance(error, ClientError) and isinstance(cause, ClientError):
        error = cause
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        code = str(details.get("Code") or error.operation_name)
        message = str(details.get("Message") or error).strip()
        return f"{code} on {target}: {message}{_aws_hint(code, target, region)}"
    if isinstance(error, (NoCredentialsError, PartialCredentialsError)):
        return (
            f"no usable AWS credentials ({error}): set AWS_PROFILE to a profile of "
            "`aws configure` (or `aws sso login`), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "or run where an instance role provides them."
        )
    if isinstance(error, ProfileNotFound):
        return f"{error}: set AWS_PROFILE to one of `aws configure list-profiles`."
    if isinstance(error, EndpointConnectionError):
        return (
            f"cannot reach {error.kwargs.get('endpoint_url', 'AWS')} for {target}: check the "
            "network (and AWS_ENDPOINT_URL, if set)."
        )
    return f"{target}: {error}"


@contextlib.contextmanager
def aws_errors(target: str, region: str = DEFAULT_REGION) -> Iterator[None]:
    """Turn the AWS errors of the calls inside into one ``AwsCallError`` line naming ``target``."""
    from boto3.exceptions import Boto3Error  # noqa: PLC0415 - only needed to talk to AWS
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    try:
        yield
    except (ClientError, BotoCoreError, Boto3Error) as error:
        raise AwsCallError(describe_aws_error(error, target, region)) from error


# Timeouts of every AWS client the launcher makes (retries: botocore's, or AWS_MAX_ATTEMPTS).
AWS_CLIENT_CONFIG: dict[str, Any] = {"connect_timeout": 10, "read_timeout": 60}


def _client(service: str, region: str) -> Any:
    try:
        import boto3  # noqa: PLC0415 - only needed to talk to AWS, from a workstation
    except ModuleNotFoundError as error:
        raise FruitsInputError(
            "boto3 is not installed: install the launcher's extra, `pip install 'fruits[deploy]'` "
            "(or `make setup`)."
        ) from error
    from botocore.config import Config  # noqa: PLC0415

    return boto3.client(service, region_name=region, config=Config(**AWS_CLIENT_CONFIG))
