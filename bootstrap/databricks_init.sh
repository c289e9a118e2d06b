#!/usr/bin/env bash
# Cluster-scoped init script of the Databricks job (resources/fruits_job.yml): the pinned
# requirements into the cluster's Python, each checked against its sha256 (--require-hashes).
# bootstrap/requirements-databricks.txt is requirements.lock without pyspark and py4j (the
# Databricks Runtime brings Spark); the job then installs the project's wheel as its library,
# whose dependencies are already satisfied here. FRUITS_REQUIREMENTS is set by the job cluster.
set -euo pipefail

: "${FRUITS_REQUIREMENTS:?is set by the spark_env_vars of the job cluster}"
PIP="${DATABRICKS_PIP:-/databricks/python/bin/pip}"

echo "[fruits-init] installing $(grep -c '^[a-z]' "$FRUITS_REQUIREMENTS") pinned requirements"
# --no-deps: the requirements are a complete lock; the runtime's own Spark and Delta stay.
"$PIP" install --quiet --disable-pip-version-check --require-hashes --no-deps \
  -r "$FRUITS_REQUIREMENTS"
echo "[fruits-init] done"
