#!/usr/bin/env bash
# EMR bootstrap action: the project's Python environment on every node of the cluster.
#
#   emr_bootstrap.sh s3://<bucket>/<prefix>/artifacts [venv dir, default /opt/fruits/venv]
#
# Installs Python 3.11 (EMR 7's default is 3.9), a virtual environment (python_env in
# conf/emr/globals.yml, passed by `fruits-emr`)
# with the exact pins of requirements-emr.txt (generated from requirements.lock, without
# pyspark and py4j: EMR provides Spark), each checked against its sha256 from the lock
# (--require-hashes), then the project's wheel, which has no hash in the lock: installed on
# its own, without dependencies. Safe to run again: it skips what is already in place. The
# cluster's spark-env sets PYSPARK_PYTHON to this venv.
set -euo pipefail

ARTIFACTS="${1:?usage: emr_bootstrap.sh s3://bucket/prefix/artifacts}"
VENV="${2:-/opt/fruits/venv}"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

log() { echo "[fruits-bootstrap $(date -u +%Y-%m-%dT%H:%M:%SZ)] $*"; }
# EMR runs bootstrap actions as the hadoop user, which needs sudo; as root (a rehearsal,
# a container) there may be no sudo at all.
as_root() { if [[ $EUID -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

if command -v python3.11 >/dev/null 2>&1; then
  log "python3.11 already present: $(python3.11 --version)"
else
  log "installing python3.11"
  as_root dnf install -y -q python3.11 python3.11-pip
fi

if [[ -x "$VENV/bin/python" ]]; then
  log "virtual environment $VENV already present"
else
  log "creating $VENV"
  as_root mkdir -p "$(dirname "$VENV")"
  as_root python3.11 -m venv "$VENV"
fi

aws s3 cp --only-show-errors "$ARTIFACTS/requirements-emr.txt" "$WORK/requirements-emr.txt"
aws s3 cp --only-show-errors --recursive --exclude "*" --include "fruits-*.whl" "$ARTIFACTS/" "$WORK/"
wheel=$(find "$WORK" -maxdepth 1 -name 'fruits-*.whl' | head -n 1)
[[ -n "$wheel" ]] || { log "no fruits-*.whl under $ARTIFACTS"; exit 1; }

stamp="$VENV/.fruits-installed"
wanted="$(sha256sum "$WORK/requirements-emr.txt" "$wheel" | sha256sum | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]]; then
  log "requirements and wheel already installed ($wanted)"
  exit 0
fi

log "installing pinned requirements (hashes checked)"
# --no-deps: the lock is complete, and delta-spark's dependency on pyspark must not bring a
# second Spark next to EMR's (Delta's jars are EMR's own: delta-defaults in the cluster).
as_root "$VENV/bin/pip" install --quiet --disable-pip-version-check --require-hashes --no-deps \
  -r "$WORK/requirements-emr.txt"
log "installing $(basename "$wheel") (no dependencies: they are pinned above, Spark is EMR's)"
as_root "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps --force-reinstall "$wheel"
echo "$wanted" | as_root tee "$stamp" >/dev/null
log "done: $("$VENV/bin/python" -c 'import fruits, tensorflow; print("fruits", fruits.__version__, "tensorflow", tensorflow.__version__)')"
