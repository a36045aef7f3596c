# objio — developer commands. Every target works from a fresh clone: it creates .venv itself.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# torch==2.13.0 is a local CPU build here; any other spec pulls a multi-GB CUDA build, so it is
# installed explicitly before the extras that need it (s3torchconnector in the bench peers,
# lightning).
TORCH  ?= torch==2.13.0
# Azurite (Microsoft's Azure Storage emulator, the npm package) for the az:// tests and
# `objio server --kind azure`: installed into this cache folder, found there by LocalAzureServer.
AZURITE_DIR ?= .cache/azurite
AZURITE     := $(AZURITE_DIR)/node_modules/.bin/azurite-blob

.PHONY: demo test bench lint docs docs-serve install-dev install-demo install-docs install-azurite clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.demo-installed: pyproject.toml | $(VENV)/bin/python
	$(PIP) install -q -e ".[server,hdf5]"
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(VENV)/bin/python
	$(PIP) install -q "$(TORCH)"
	$(PIP) install -q -e ".[dev,server,hdf5,bench,lightning,plot]"
	touch $@ $(VENV)/.demo-installed $(VENV)/.docs-installed

$(AZURITE):
	mkdir -p $(AZURITE_DIR)
	npm install --silent --no-audit --no-fund --prefix $(AZURITE_DIR) azurite@3
	test -x $@

# the docs tools alone (the dev extra pulls them in too)
$(VENV)/.docs-installed: pyproject.toml | $(VENV)/bin/python
	$(PIP) install -q -e ".[docs]"
	touch $@

install-azurite: $(AZURITE)
install-docs: $(VENV)/.docs-installed
install-demo: $(VENV)/.demo-installed
install-dev: $(VENV)/.dev-installed $(AZURITE)

## make demo: install objio and run the main job (objio bench) on the embedded S3 server
demo: install-demo
	$(VENV)/bin/objio bench --num 256 --size 1MiB --epochs 3

## make test: the whole suite against a real local S3 server
test: install-dev
	$(PY) -m pytest -q

## make bench: objio against its peers (same objects, same run), results in bench-results/;
## on S3 (SeaweedFS) and on the Azure and GCS emulators (Azurite, fake-gcs-server) vs obstore
bench: install-dev
	mkdir -p bench-results
	$(VENV)/bin/objio bench --compare --num 1000 --size 128KiB --max-in-flight 64 --epochs 5 --json bench-results/small.json
	$(VENV)/bin/objio bench --compare --num 32 --size 16MiB --max-in-flight 16 --epochs 5 --json bench-results/large.json
	$(VENV)/bin/objio bench --compare --op put,head,list,copy,delete --num 1000 --size 64KiB --max-in-flight 64 --epochs 3 --json bench-results/ops-small.json
	$(VENV)/bin/objio bench --compare --op put --num 1000 --size 1MiB --max-in-flight 64 --epochs 3 --json bench-results/put-1mib.json
	$(VENV)/bin/objio bench --compare --op copy --num 16 --size 16MiB --max-in-flight 16 --epochs 3 --json bench-results/copy-large.json
	$(VENV)/bin/objio bench --compare s3dlio --op gen --num 128 --size 4KiB --epochs 3 --json bench-results/gen-put.json
	$(VENV)/bin/objio gen file:///tmp/objio-gen-measure --measure --json bench-results/gen-speed.json
	$(VENV)/bin/objio bench stream --size 1GiB --rounds 3 --json bench-results/io.json
	for srv in azure gcs; do \
	  $(VENV)/bin/objio bench --server $$srv --compare obstore --num 1000 --size 128KiB --max-in-flight 64 --epochs 5 --json bench-results/$$srv-small.json || exit 1; \
	  $(VENV)/bin/objio bench --server $$srv --compare obstore --num 32 --size 16MiB --max-in-flight 16 --epochs 5 --json bench-results/$$srv-large.json || exit 1; \
	  $(VENV)/bin/objio bench stream --server $$srv --ops read --size 1GiB --rounds 5 --json bench-results/$$srv-stream.json || exit 1; \
	done
	$(VENV)/bin/objio bench --throughput --size 128KiB --num 2048 --epochs 5 --json bench-results/torch-small.json
	$(VENV)/bin/objio bench --throughput --size 16MiB --num 256 --epochs 5 --json bench-results/torch-large.json
	$(VENV)/bin/objio bench --workload cosmoflow --compare s3torchconnector --epochs 3 --json bench-results/train-cosmoflow.json
	$(VENV)/bin/objio bench checkpoint --size 1GiB --ranks 2 --rounds 3 --json bench-results/checkpoint.json
	$(VENV)/bin/objio bench model --size 2GiB --shards 8 --rounds 3 --json bench-results/model.json --plot bench-results/model.png
	$(VENV)/bin/objio bench list --keys 100000 --latency-ms 20 --rounds 3 --json bench-results/list-20ms.json --plot bench-results/list-20ms.png
	$(VENV)/bin/objio bench list --keys 100000 --latency-ms 0 --rounds 3 --json bench-results/list-0ms.json
	$(VENV)/bin/objio bench oplog --num 1000 --size 128KiB --rounds 7 --json bench-results/oplog.json
	for n in 1 2 4; do $(VENV)/bin/objio bench --clients $$n --num 1000 --size 128KiB --epochs 3 --json bench-results/clients-$$n.json || exit 1; done

## make docs: the docs site (docs/, mkdocs.yml) built with --strict into site/, offline
docs: $(VENV)/.docs-installed
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

## make docs-serve: the docs site on http://127.0.0.1:8000, rebuilt on every change
docs-serve: $(VENV)/.docs-installed
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve --strict

lint: install-dev
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) $(AZURITE_DIR) build dist site src/*.egg-info .pytest_cache .mypy_cache .ruff_cache bench-results
