# Two commands from a fresh clone:  `make run` (set up + run on the sample)  and  `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export KEDRO_DISABLE_TELEMETRY := true

# Machines without internet cannot download the official ImageNet weights; when the
# offline copy of this workspace is present, use it (and check its sha256).
OFFLINE_WEIGHTS := $(abspath ../shared/models/mobilenet_v2_1.0_224_no_top.reconstructed.h5)
OFFLINE_WEIGHTS_SHA256 := 71e4c4ec4aa24c9c951b9265d6de42e1336dcf614c2214fa6a989208615e232c
ifneq ($(wildcard $(OFFLINE_WEIGHTS)),)
WEIGHTS_PARAMS := weights_source=$(OFFLINE_WEIGHTS),weights_sha256=$(OFFLINE_WEIGHTS_SHA256)
else
WEIGHTS_PARAMS := weights_source=imagenet
endif
# Extra `kedro run --params`, e.g. make run PARAMS=raw_images_path=/data/fruits-360
PARAMS ?=

.PHONY: setup run test lint viz lock clean
setup: $(VENV)/.installed

$(VENV)/.installed: requirements-dev.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

run: setup
	$(BIN)/kedro run --env local --params=$(WEIGHTS_PARAMS)$(if $(PARAMS),$(comma)$(PARAMS))

test: setup
	$(BIN)/ruff check src tests
	$(BIN)/pytest

viz: setup
	$(BIN)/kedro viz run

# Regenerate the lock files after changing pyproject.toml (needs `uv`).
lock:
	uv pip compile pyproject.toml --python-version 3.11 --no-header -o requirements.lock
	uv pip compile pyproject.toml --extra viz --extra dev -c requirements.lock \
		--python-version 3.11 --no-header -o requirements-dev.lock

clean:
	rm -rf data/02_intermediate data/04_feature data/05_model_input data/06_models data/08_reporting

comma := ,
