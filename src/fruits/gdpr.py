"""GDPR guard: the job's data and compute stay in AWS regions inside the European Union."""

from fruits.errors import FruitsInputError

# AWS regions located in EU member states. London (eu-west-2) and Zurich (eu-central-2) are
# in Europe but not in the EU, so they are refused.
EU_REGIONS = frozenset(
    {
        "eu-west-1",  # Ireland
        "eu-west-3",  # Paris
        "eu-central-1",  # Frankfurt
        "eu-north-1",  # Stockholm
        "eu-south-1",  # Milan
        "eu-south-2",  # Spain
    }
)
DEFAULT_REGION = "eu-west-3"


class RegionOutsideEUError(FruitsInputError):
    """An AWS region outside the European Union was configured."""


def require_eu_region(region: str) -> str:
    """Return ``region`` if it is an EU region, else raise one actionable error line."""
    if region not in EU_REGIONS:
        raise RegionOutsideEUError(
            f"AWS region '{region}' is outside the EU, which GDPR rules out for this job: "
            f"use one of {', '.join(sorted(EU_REGIONS))} (default {DEFAULT_REGION})."
        )
    return region
