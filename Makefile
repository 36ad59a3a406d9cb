# Two entry points: `make run` (serve the UI) and `make test`. Everything else is built on demand.
PYTHON   ?= python3.11
VENV     := .venv
BIN      := $(VENV)/bin
MODEL    := var/models/multilingual-e5-small
SRC      := assistant index corpus ui tests benchmarks
CHROMIUM ?= /usr/bin/chromium
USER_ID  ?= $(shell id -u)
BROWSER_PACKAGES := chromium fonts-dejavu-core
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: run test install model index eval bench lint browser clean

run: index
	$(BIN)/assistant serve --host 127.0.0.1 --port 7860

test: lint model browser
	$(BIN)/pytest -q

# Debian's Chromium drives the real-browser UI test (Playwright cannot download its own browser here).
# Installed when missing if we are root; otherwise make stops and says the one command to run.
browser:
	@if [ ! -x "$(CHROMIUM)" ]; then \
	    if [ "$(USER_ID)" = 0 ] && command -v apt-get >/dev/null; then \
	        echo "Installing $(BROWSER_PACKAGES) for the browser test"; \
	        apt-get update -q && DEBIAN_FRONTEND=noninteractive \
	            apt-get install -y -q --no-install-recommends $(BROWSER_PACKAGES) || exit 1; \
	    else \
	        echo "The browser test needs Debian's Chromium at $(CHROMIUM). Run:" >&2; \
	        echo "    sudo apt-get update && sudo apt-get install -y $(BROWSER_PACKAGES)" >&2; \
	        echo "then make test again." >&2; \
	        exit 1; \
	    fi; \
	fi

install: $(VENV)/.installed

# torch first, pinned: any other version pulls a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test,bench]'
	touch $@

model: install
	$(BIN)/assistant model prepare

# Incremental: nothing changed takes a second; an index of an older format or a damaged one is rebuilt.
index: model
	$(BIN)/assistant index build

# Every shipped set, each against the index of its own corpus (SweQUAD's is built on demand, incrementally).
eval: index
	$(BIN)/assistant eval eval/queries.jsonl --mode all --corpus corpus/articles --index var/eval/ours/index
	$(BIN)/assistant eval eval/conversations.jsonl --mode all --corpus corpus/articles --index var/eval/ours/index
	$(BIN)/assistant eval eval/swequad/queries.jsonl eval/swequad/out_of_scope.jsonl --mode all \
		--corpus eval/swequad/corpus --index var/eval/swequad/index

bench: index
	for b in latency build coldstart peer_txtai scale; do $(BIN)/python benchmarks/$$b.py || exit 1; done

clean:
	rm -rf var

lint: install
	$(BIN)/ruff check $(SRC)
	$(BIN)/ruff format --check $(SRC)
