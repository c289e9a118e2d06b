"""GDPR guard: the job's data and compute stay in cloud regions inside the European Union."""

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


# Azure regions located in EU member states. UK South/West, Switzerland North/West and Norway
# East/West are in Europe but not in the EU, so they are refused.
AZURE_EU_REGIONS = frozenset(
    {
        "francecentral",  # Paris
        "francesouth",  # Marseille
        "westeurope",  # Netherlands
        "northeurope",  # Ireland
        "germanywestcentral",  # Frankfurt
        "germanynorth",  # Berlin
        "swedencentral",  # Gävle
        "swedensouth",  # Malmö
        "italynorth",  # Milan
        "polandcentral",  # Warsaw
        "spaincentral",  # Madrid
    }
)
DEFAULT_AZURE_REGION = "francecentral"


def require_eu_azure_region(region: str) -> str:
    """Return ``region`` if it is an Azure region in the EU, else raise one actionable line.

    Azure writes region names in lower case without spaces (``France Central`` is
    ``francecentral``): other spellings are read that way.
    """
    name = region.replace(" ", "").lower()
    if name not in AZURE_EU_REGIONS:
        raise RegionOutsideEUError(
            f"Azure region '{region}' is outside the EU, which GDPR rules out for this job: use "
            f"one of {', '.join(sorted(AZURE_EU_REGIONS))} (default {DEFAULT_AZURE_REGION})."
        )
    return name
