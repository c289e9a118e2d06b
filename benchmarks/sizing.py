"""EMR sizing: cluster throughput and cost per million images from the measured rate."""

from __future__ import annotations

from typing import Any

# eu-west-3, on demand, per m5.xlarge and hour (check the current AWS price list).
EC2_PER_HOUR = 0.224
EMR_PER_HOUR = 0.048
# An m5.xlarge's 4 vCPUs are 2 physical cores, like the cores measured here.
CORES_PER_NODE = 2
CORE_NODES = (2, 4, 8, 16)

EMR_SIZING = """## EMR sizing, from the measured per-core throughput

Assumptions: an m5.xlarge has 4 vCPUs = 2 physical cores (hyper-threads), like the 2 cores measured
here, so one node runs about {per_node:.0f} images/s = {per_hour:,.0f} images/hour (our stage's
per-core rate x 2; real EMR cores are usually faster than these shared ones: conservative).
Price (eu-west-3, on demand, check the current AWS price list): $0.224/h EC2 + $0.048/h EMR per
m5.xlarge. A cluster of 1 primary + N core nodes; ~12 minutes of provisioning and bootstrap per
cluster are not included.

| core nodes | images/hour | hours per million images | cost per million images |
| ---: | ---: | ---: | ---: |
{table}"""


def emr_sizing(stage_rate: float, cores: int) -> dict[str, Any]:
    """``per_node`` images/s, ``per_hour`` images/hour and the Markdown ``table`` rows."""
    per_node = stage_rate / cores * CORES_PER_NODE
    per_hour = per_node * 3600
    rows = []
    for nodes in CORE_NODES:
        hours = 1e6 / (per_hour * nodes)
        cost = hours * (nodes + 1) * (EC2_PER_HOUR + EMR_PER_HOUR)
        rows.append(f"| {nodes} | {per_hour * nodes:,.0f} | {hours:.2f} | ${cost:.2f} |")
    return {"per_node": per_node, "per_hour": per_hour, "table": "\n".join(rows)}


def emr_markdown(emr: dict[str, Any]) -> str:
    return EMR_SIZING.format(**emr)
