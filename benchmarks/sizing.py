"""Sizing of the AWS targets: one EC2 instance (`fruits-ec2`) and an EMR cluster (`fruits-emr`),
throughput and cost per million images from the measured per-core rate."""

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


# One instance (`fruits-ec2`): c7i types (eu-west-3, on demand, approximate: check the current
# AWS price list), with their physical cores (vCPUs / 2).
EC2_TYPES = {"c7i.2xlarge": (4, 0.42), "c7i.4xlarge": (8, 0.85), "c7i.8xlarge": (16, 1.70)}
# Boot, dnf and pip installs before the run (measured here: 49 s of installs from a warm pip
# cache; a fresh instance downloads ~700 MB of wheels): assumed per run.
EC2_START_MINUTES = 5
# EMR's provisioning and bootstrap per cluster (README, "Run on EMR").
EMR_START_MINUTES = 12

EC2_COLUMNS = (
    "| instance | cores | images/hour | hours per million images | cost per million images "
    "| 100,000 images: wall time, cost |"
)
EC2_SIZING = """## One EC2 instance (`fruits-ec2`) next to EMR, from the same per-core throughput

Assumptions: the measured per-core rate of our stage ({per_core:.0f} images/s per physical core),
times the instance's physical cores (vCPUs / 2; Sapphire Rapids cores are faster than the shared
ones measured here: conservative); {ec2_start} minutes of boot and installs per run; prices
eu-west-3 on demand, approximate (check the current AWS price list; spot is typically 60-70%
less). An EMR cluster adds the $0.048/h EMR fee per node, an idle primary node and
~{emr_start} minutes of provisioning.

{columns}
| --- | ---: | ---: | ---: | ---: | ---: |
{table}

{crossover}"""


def _ec2_run(images: float, cores: int, price: float, per_core: float) -> tuple[float, float]:
    hours = images / (per_core * cores * 3600) + EC2_START_MINUTES / 60
    return hours, hours * price


def _emr_run(images: float, nodes: int, per_core: float) -> tuple[float, float]:
    hours = images / (per_core * CORES_PER_NODE * nodes * 3600) + EMR_START_MINUTES / 60
    return hours, hours * (nodes + 1) * (EC2_PER_HOUR + EMR_PER_HOUR)


def ec2_sizing(stage_rate: float, cores: int) -> dict[str, Any]:
    """The single-instance table and where a cluster becomes faster (never cheaper here)."""
    per_core = stage_rate / cores
    rows = []
    for name, (instance_cores, price) in EC2_TYPES.items():
        per_hour = per_core * instance_cores * 3600
        hours, cost = _ec2_run(1e5, instance_cores, price, per_core)
        rows.append(
            f"| {name} | {instance_cores} | {per_hour:,.0f} | {1e6 / per_hour:.2f} | "
            f"${1e6 / per_hour * price:.2f} | {hours * 60:.0f} min, ${cost:.2f} |"
        )
    # The largest instance here against the largest cluster of the EMR table.
    biggest, (big_cores, big_price) = list(EC2_TYPES.items())[-1]
    nodes = CORE_NODES[-1]
    # Equal wall times: images / ec2_rate + ec2_start = images / emr_rate + emr_start.
    ec2_rate, emr_rate = per_core * big_cores * 3600, per_core * CORES_PER_NODE * nodes * 3600
    start_gap = (EMR_START_MINUTES - EC2_START_MINUTES) / 60
    images = float(f"{start_gap / (1 / ec2_rate - 1 / emr_rate):.2g}")
    ec2_cost = 1e6 / (per_core * big_cores * 3600) * big_price
    emr_cost = _emr_run(1e6, nodes, per_core)[1] - _emr_run(0, nodes, per_core)[1]
    crossover = (
        f"Per image one instance is always cheaper than a cluster (no primary node, no EMR fee: "
        f"${ec2_cost:.2f} per million on a {biggest} against ${emr_cost:.2f} on {nodes} core "
        f"nodes, start-up aside). A cluster becomes **faster** once its extra cores repay its "
        f"longer start: {nodes} m5.xlarge core nodes ({nodes * CORES_PER_NODE} cores) finish "
        f"before one {biggest} ({big_cores} cores) from about {images:,.0f} images in one run. "
        "Below that one instance is both cheaper and at least as fast; above it, a cluster buys "
        "wall time (and scales on) at the cost per image of the EMR table."
    )
    return {
        "per_core": per_core,
        "table": "\n".join(rows),
        "crossover": crossover,
        "columns": EC2_COLUMNS,
        "ec2_start": EC2_START_MINUTES,
        "emr_start": EMR_START_MINUTES,
    }


def ec2_markdown(ec2: dict[str, Any]) -> str:
    return EC2_SIZING.format(**ec2)


INT8_SIZING = """### The same with `featurization.precision: int8`

Our stage's rate of the tables above times the int8 stage's speed-up over float32 measured beside
it (x{speedup:.2f}: {per_core:.0f} images/s per physical core). It holds on CPUs with AVX-512 VNNI
like this one's: m6i, c6i, m7i, c7i (Sapphire Rapids' AMX units are not used by LiteRT: no further
gain measured or claimed), m5 when it lands on Cascade Lake. On a Skylake m5 (AVX2 only) int8 was
not measured here: size it with the float32 tables. Core nodes priced as the m5.xlarge above
(check the price list for m6i.xlarge).

| core nodes (EMR, xlarge) | images/hour | hours per million images | cost per million images |
| ---: | ---: | ---: | ---: |
{emr_table}

{columns}
| --- | ---: | ---: | ---: | ---: | ---: |
{ec2_table}"""


def int8_markdown(stage_rate: float, int8_speedup: float, cores: int) -> str:
    """The EMR and single-instance tables again, at our stage's rate (the float32 tables')
    times the int8 stage's speed-up over float32 measured beside it."""
    int8_rate = stage_rate * int8_speedup
    return INT8_SIZING.format(
        per_core=int8_rate / cores,
        speedup=int8_speedup,
        emr_table=emr_sizing(int8_rate, cores)["table"],
        ec2_table=ec2_sizing(int8_rate, cores)["table"],
        columns=EC2_COLUMNS,
    )
