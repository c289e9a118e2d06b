# Two commands from a fresh clone:  `make run` (set up + run on the sample)  and  `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export KEDRO_DISABLE_TELEMETRY := true

# Machines without internet cannot download the official ImageNet weights; when the
# offline copy of this workspace is present, use it (the weights dataset checks a file of
# that name against its known sha256).
OFFLINE_WEIGHTS := $(abspath ../shared/models/mobilenet_v2_1.0_224_no_top.reconstructed.h5)
ifneq ($(wildcard $(OFFLINE_WEIGHTS)),)
WEIGHTS_PARAMS := weights_source=$(OFFLINE_WEIGHTS)
else
WEIGHTS_PARAMS := weights_source=imagenet
endif
# Extra `kedro run --params`, e.g. make run PARAMS=raw_images_path=/data/fruits-360
PARAMS ?=

# Spark's S3A connector for local runs against S3 (EMR ships its own): hadoop-aws must match
# pyspark's Hadoop (3.3.4 in pyspark 3.5.5) and the AWS SDK bundle that Hadoop release was built with.
HADOOP_AWS_VERSION := 3.3.4
AWS_SDK_BUNDLE_VERSION := 1.12.262
# Spark's cloud integration (the S3A committers' bindings) for Spark outside EMR writing to S3
# (conf/ec2): the release of pyspark.
SPARK_HADOOP_CLOUD := spark-hadoop-cloud_2.12-3.5.5
# Delta Lake for Spark 3.5 (the tables of the images, the feature store and the features): the
# release EMR 7.10 ships (3.3.0-amzn-2); pyproject.toml pins the same delta-spark for Python.
DELTA_VERSION := 3.3.0
JARS := .jars/hadoop-aws-$(HADOOP_AWS_VERSION).jar .jars/aws-java-sdk-bundle-$(AWS_SDK_BUNDLE_VERSION).jar \
	.jars/$(SPARK_HADOOP_CLOUD).jar .jars/delta/delta-spark_2.12-$(DELTA_VERSION).jar \
	.jars/delta/delta-storage-$(DELTA_VERSION).jar

# Debian's Chromium, for the tests that open kedro-viz and the service's page in a real browser
# (driven by Playwright).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	@echo "Installing Debian's chromium package (browser tests: kedro-viz, the service's page)..."
	$(if $(filter 0,$(shell id -u)),,sudo) apt-get update -q
	$(if $(filter 0,$(shell id -u)),,sudo) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium

# OpenBLAS for Spark ML (dev.ludovic.netlib loads the system's libblas.so.3): the classifier's
# L-BFGS ~1.5x faster than Spark's Java BLAS (README, "Design notes"). Debian's package where
# apt-get exists; elsewhere Spark falls back to its Java BLAS, only slower.
native-blas:
	@if /sbin/ldconfig -p | grep -q 'libblas\.so\.3 '; then :; \
	elif command -v apt-get >/dev/null; then \
		echo "Installing Debian's libopenblas0-pthread (native BLAS for Spark ML)..."; \
		$(if $(filter 0,$(shell id -u)),,sudo) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q libopenblas0-pthread \
		|| { $(if $(filter 0,$(shell id -u)),,sudo) apt-get update -q && $(if $(filter 0,$(shell id -u)),,sudo) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q libopenblas0-pthread; }; \
	else echo "No apt-get: Spark ML keeps its Java BLAS (slower classifier training)."; fi

# A local multi-node YARN (Hadoop's MiniYARNCluster, Hadoop 3.3.4 as in pyspark) for the
# cluster rehearsal: tools/yarn/pom.xml lists the jars, copied with their dependencies.
YARN_JARS := .jars/yarn/.fetched

# Hadoop's Azure connector (tools/azure/pom.xml) and Azurite, the Azure Storage emulator of the
# Azure rehearsal (npm, versions locked in tools/azurite/package-lock.json).
AZURE_JARS := .jars/azure/.fetched
AZURITE := tools/azurite/node_modules/.bin/azurite-blob

.PHONY: setup native-blas class-archive run serve test test-fast lint viz lock clean emr-deploy benchmark yarn-cluster databricks-bundle
setup: $(VENV)/.installed $(JARS) $(YARN_JARS) $(AZURE_JARS) $(AZURITE) native-blas class-archive

# The local Spark driver's class archive (HotSpot AppCDS), recorded by one run on the committed
# sample: every later local run starts ~5 s sooner (README, "Design notes"). Checked at each
# set-up: a new JDK or pyspark records a new one; a failed recording only warns.
class-archive: $(VENV)/.installed $(JARS)
	@$(BIN)/python -m fruits.apps.class_archive $(WEIGHTS_PARAMS)

$(AZURE_JARS): tools/azure/pom.xml
	mvn -q -B -f tools/azure/pom.xml dependency:copy-dependencies -DoutputDirectory=$(abspath .jars/azure)
	touch $@

$(AZURITE): tools/azurite/package-lock.json
	npm ci --prefix tools/azurite --no-audit --no-fund --loglevel=error
	touch $@

$(YARN_JARS): tools/yarn/pom.xml
	mvn -q -B -f tools/yarn/pom.xml dependency:copy-dependencies -DoutputDirectory=$(abspath .jars/yarn)
	touch $@

.jars/hadoop-aws-%.jar:
	mvn -q -B dependency:copy -Dartifact=org.apache.hadoop:hadoop-aws:$* -DoutputDirectory=.jars
.jars/aws-java-sdk-bundle-%.jar:
	mvn -q -B dependency:copy -Dartifact=com.amazonaws:aws-java-sdk-bundle:$* -DoutputDirectory=.jars
.jars/spark-hadoop-cloud_2.12-%.jar:
	mvn -q -B dependency:copy -Dartifact=org.apache.spark:spark-hadoop-cloud_2.12:$* -DoutputDirectory=.jars
.jars/delta/delta-spark_2.12-%.jar:
	mvn -q -B dependency:copy -Dartifact=io.delta:delta-spark_2.12:$* -DoutputDirectory=.jars/delta
.jars/delta/delta-storage-%.jar:
	mvn -q -B dependency:copy -Dartifact=io.delta:delta-storage:$* -DoutputDirectory=.jars/delta

# pip byte-compiles what it installs (its default): ~25 s once. Left to Python, a process
# started with PYTHONDONTWRITEBYTECODE=1 (set on some machines and CI runners) compiles every
# module it imports from source, every time: 5.2 s instead of 1.8 s for a run's imports here,
# in the driver and again in each Spark Python worker.
$(VENV)/.installed: requirements-dev.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

run: setup
	$(BIN)/kedro run --env local --params=$(WEIGHTS_PARAMS)$(if $(PARAMS),$(comma)$(PARAMS))

# The prediction service and its page on the models of the last `make run`: http://127.0.0.1:8000/
serve: setup
	$(BIN)/fruits-serve$(if $(PARAMS), --params=$(PARAMS))

test: setup $(CHROMIUM) lint
	$(BIN)/pytest -n 2 --dist loadfile --no-loadscope-reorder

# Unit and node tests on small real data: no pipeline run, cluster, browser or notebook.
test-fast: setup lint
	$(BIN)/pytest -m "not (pipeline or emr or ec2 or azure or yarn or browser or notebook)"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Featurization benchmark: writes BENCHMARKS.md and benchmarks/results.json (ARGS=--quick: 1,000 images).
benchmark: setup
	$(BIN)/python -m benchmarks $(ARGS)

# A two-NodeManager YARN on 127.0.0.1 until Ctrl-C; prints the HADOOP_CONF_DIR to use.
yarn-cluster: setup
	$(BIN)/python -m tools.yarn.minicluster

viz: setup
	$(BIN)/kedro viz run

# Package, upload and run once on a transient EMR cluster (see README, "Run on EMR").
BUCKET ?=
PREFIX ?= fruits
REGION ?= eu-west-3
emr-deploy: setup
	@test -n "$(BUCKET)" || { echo "usage: make emr-deploy BUCKET=<your EU bucket> [PREFIX=fruits] [REGION=eu-west-3]"; exit 2; }
	$(BIN)/fruits-emr deploy --bucket $(BUCKET) --prefix $(PREFIX) --region $(REGION)

# Regenerate databricks.yml, resources/fruits_job.yml and bootstrap/requirements-databricks.txt
# from the pipelines and the lock (after changing either; a test fails while they are stale).
databricks-bundle: setup
	$(BIN)/python -m tools.databricks_bundle

# Regenerate the lock files after changing pyproject.toml (needs `uv`).
lock:
	@# uv ignores Requires-Python upper bounds; backports-strenum 1.3+ refuses Python 3.11.
	printf 'backports-strenum<1.3\n' > .lock-constraints.txt
	uv pip compile pyproject.toml -c .lock-constraints.txt --python-version 3.11 --no-header \
		--generate-hashes -o requirements.lock
	uv pip compile pyproject.toml --extra viz --extra deploy --extra serve --extra dev -c requirements.lock \
		--python-version 3.11 --no-header --generate-hashes -o requirements-dev.lock
	rm .lock-constraints.txt

clean:
	rm -rf data/02_intermediate data/04_feature data/05_model_input data/06_models data/08_reporting

comma := ,
