# Two commands: `make run` (install, index the seeds if needed, open the REPL or answer Q=...)
# and `make test`. Everything lives in .venv; torch is the CPU build (deploy/install.sh).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help install run test deploy-check bench eval eval-scifact bot postgres postgres-stop clean
.DEFAULT_GOAL := help

help: ## list the targets
	@echo "seedrag: make TARGET (the first call creates .venv; see README.md)"
	@awk -F':.*## ' '/^[a-z-]+:.*## /{printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml deploy/install.sh
	PYTHON=$(PY) deploy/install.sh $(VENV) dev --editable
	touch $(STAMP)

install: $(STAMP) ## create .venv and install the project with the CPU build of torch

run: $(STAMP) ## answer Q="..." (index the documents first if needed), or open the REPL
ifdef Q
	$(BIN)/rag ask "$(Q)"
else
	$(BIN)/rag repl
endif

test: $(STAMP) ## run the whole test suite (what CI runs)
	$(BIN)/python -m pytest -q

deploy-check: $(STAMP) ## lint the deploy files; run the image's build and start steps in a clean venv
	deploy/check.sh

eval: $(STAMP) ## seeds QA eval: reports/seeds.json and reports/seeds.md
	$(BIN)/python -m evals run --dataset evals/seeds_qa.jsonl --out reports/seeds.json --markdown reports/seeds.md

eval-scifact: $(STAMP) ## BEIR SciFact, dense vs bm25 vs hybrid, with a chart
	$(BIN)/python -m evals run --dataset ../shared/benchmarks/beir-scifact --compare dense,bm25,hybrid --out reports/scifact.json

bench: $(STAMP) ## speed benchmark against plain llama-index (about 25 min)
	$(BIN)/python -m evals bench

bot: $(STAMP) ## run the Discord bot (needs DISCORD_TOKEN in .env)
	$(BIN)/python -m bot

postgres: $(STAMP) ## start a local PostgreSQL + pgvector in .rag_pg and print RAG_STORE_URL
	$(BIN)/python -m pip install -q -e ".[pgserver]"
	$(BIN)/python -m rag.pg_local start --dir .rag_pg

postgres-stop: ## stop the local PostgreSQL started by `make postgres`
	$(BIN)/python -m rag.pg_local stop --dir .rag_pg

clean: ## delete the index, eval caches and reports (not the model cache)
	rm -rf .rag_index .rag_cache reports
