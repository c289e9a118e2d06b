#!/usr/bin/env bash
# User data of a `fruits-ec2 run` instance (Amazon Linux 2023): one run of the pipelines, then
# the instance shuts down, which terminates it (InstanceInitiatedShutdownBehavior=terminate).
#
# `fruits-ec2 run` puts the run's settings after the first line (exported variables):
#   FRUITS_ARTIFACTS        s3://<bucket>/<prefix>/artifacts (wheel, conf, requirements, jars/)
#   FRUITS_RUN_URI          s3://<bucket>/<prefix>/logs/ec2/<run id>  (status.json, run.log)
#   FRUITS_RUN_PARAMS       `kedro run --params` (the bucket's layout)
#   FRUITS_PIPELINES        `kedro run --pipelines`, empty for all
#   FRUITS_TIMEOUT_MINUTES  safety timeout of the whole run, install included
#   FRUITS_KEEP_ALIVE       1: stay up after the run (shell through SSM Session Manager)
#   AWS_DEFAULT_REGION      the run's EU region
# FRUITS_HOME (default /opt/fruits) is where it installs and works. Credentials: the instance
# profile's, found by the AWS CLI, s3fs and S3A through the instance metadata (IMDSv2).
set -euo pipefail

: "${FRUITS_ARTIFACTS:?}" "${FRUITS_RUN_URI:?}" "${FRUITS_RUN_PARAMS:?}"
: "${FRUITS_TIMEOUT_MINUTES:?}" "${AWS_DEFAULT_REGION:?}"
FRUITS_PIPELINES="${FRUITS_PIPELINES:-}"
FRUITS_KEEP_ALIVE="${FRUITS_KEEP_ALIVE:-0}"
FRUITS_HOME="${FRUITS_HOME:-/opt/fruits}"
export AWS_DEFAULT_REGION KEDRO_DISABLE_TELEMETRY=true

mkdir -p "$FRUITS_HOME"
cd "$FRUITS_HOME"
LOG="$FRUITS_HOME/run.log"
: >"$LOG"
# Everything below goes to the log (and to the console, which cloud-init keeps).
exec 3>&1 4>&2
exec > >(tee -a "$LOG") 2>&1
TEE=$!

log() { echo "[fruits-ec2 $(date -u +%Y-%m-%dT%H:%M:%SZ)] $*"; }
s3_put() { aws s3 cp --only-show-errors --sse AES256 "$@"; }
STARTED="$(date -u +%Y-%m-%dT%H:%M:%SZ)"

status() { # state [exit code]
  printf '{"state": "%s", "exit_code": %s, "started": "%s", "updated": "%s"}\n' \
    "$1" "${2:-null}" "$STARTED" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$FRUITS_HOME/status.json"
  s3_put "$FRUITS_HOME/status.json" "$FRUITS_RUN_URI/status.json" || log "status not uploaded"
}

finish() {
  local code=$?
  trap - EXIT
  if [[ $code -eq 0 ]]; then status succeeded 0; else status failed "$code"; fi
  log "run ended with exit code $code"
  # The uploader's pending `sleep` first, then the uploader.
  [[ -n "${UPLOADER:-}" ]] && { pkill -P "$UPLOADER" sleep; kill "$UPLOADER"; } 2>/dev/null || true
  # Every line in the log before it is uploaded: tee ends once nothing writes to it.
  exec 1>&3 2>&4
  wait "$TEE" 2>/dev/null || true
  s3_put "$LOG" "$FRUITS_RUN_URI/run.log" || echo "log not uploaded" >&2
  if [[ "$FRUITS_KEEP_ALIVE" == 1 ]]; then
    log "keep-alive: the instance stays up (aws ssm start-session); terminate it when done"
  else
    shutdown -h now
  fi
  exit "$code"
}
trap finish EXIT

# The last resort: whatever hangs (an install, the run, this script), the instance goes down.
if [[ "$FRUITS_KEEP_ALIVE" != 1 ]]; then
  shutdown -h "+$((FRUITS_TIMEOUT_MINUTES + 10))" "fruits-ec2 safety timeout"
fi
# The log on S3 every minute, for `fruits-ec2 logs` while the run goes (its output not into
# the log: it would keep tee's pipe open at the end; nor the console's copies, fds 3 and 4:
# its last `sleep` outlives it and would hold the console open for up to a minute).
(while sleep 60; do s3_put "$LOG" "$FRUITS_RUN_URI/run.log" || true; done) >/dev/null 2>&1 3>&- 4>&- &
UPLOADER=$!

status installing
log "installing Java 17 and Python 3.11"
dnf install -y -q java-17-amazon-corretto-headless python3.11 python3.11-pip

log "fetching the artifacts from $FRUITS_ARTIFACTS"
aws s3 cp --only-show-errors "$FRUITS_ARTIFACTS/requirements-ec2.txt" requirements-ec2.txt
aws s3 cp --only-show-errors "$FRUITS_ARTIFACTS/conf-fruits.tar.gz" conf-fruits.tar.gz
aws s3 cp --only-show-errors --recursive "$FRUITS_ARTIFACTS/jars/" jars/
aws s3 cp --only-show-errors --recursive --exclude "*" --include "fruits-*.whl" \
  "$FRUITS_ARTIFACTS/" wheel/
wheel=$(find wheel -maxdepth 1 -name 'fruits-*.whl' | head -n 1)
[[ -n "$wheel" ]] || { log "no fruits-*.whl under $FRUITS_ARTIFACTS"; exit 1; }

log "installing the pinned requirements (hashes checked) and $(basename "$wheel")"
python3.11 -m venv venv
venv/bin/pip install --quiet --disable-pip-version-check --require-hashes -r requirements-ec2.txt
venv/bin/pip install --quiet --disable-pip-version-check --no-deps "$wheel"

# Spark's S3 connector and committer bindings; the driver's memory is in conf/ec2/spark.yml.
jars=$(find "$FRUITS_HOME/jars" -name '*.jar' | sort | paste -sd, -)
export PYSPARK_SUBMIT_ARGS="--jars $jars pyspark-shell"
arguments=(--env ec2 --conf-source conf-fruits.tar.gz --params "$FRUITS_RUN_PARAMS")
[[ -n "$FRUITS_PIPELINES" ]] && arguments+=(--pipelines "$FRUITS_PIPELINES")

status running
log "kedro run ${arguments[*]}"
timeout --signal=INT --kill-after=120 "${FRUITS_TIMEOUT_MINUTES}m" \
  venv/bin/python -m fruits "${arguments[@]}"
log "results under the bucket's data/ folder"
