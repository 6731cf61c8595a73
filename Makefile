# Two commands: `make run` (install, index the seeds if needed, open the REPL or answer Q=...)
# and `make test`. Everything lives in .venv; torch is pinned to the CPU build.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test bench eval eval-scifact bot clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "torch==2.13.0"
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
ifdef Q
	$(BIN)/rag ask "$(Q)"
else
	$(BIN)/rag repl
endif

test: $(STAMP)
	$(BIN)/python -m pytest -q

eval: $(STAMP)
	$(BIN)/python -m evals run --dataset evals/seeds_qa.jsonl --out reports/seeds.json --markdown reports/seeds.md

eval-scifact: $(STAMP)
	$(BIN)/python -m evals run --dataset ../shared/benchmarks/beir-scifact --compare dense,bm25,hybrid --out reports/scifact.json

bench: $(STAMP)
	$(BIN)/python -m evals bench

bot: $(STAMP)
	$(BIN)/python -m bot

clean:
	rm -rf .rag_index .rag_cache reports
