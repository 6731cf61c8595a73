#!/bin/sh
# CI for the deploy files, without a container runtime (.ci/run calls it after `make test`):
#   1. lint: the Dockerfile (hadolint), compose.yaml (the Compose spec schema), the systemd unit
#   2. the image's build steps, in a clean venv: deploy/install.sh, then deploy/bake-model.sh
#   3. the container's start through deploy/start.sh: ingest the seeds and answer a question with
#      the baked model cache, torch made unimportable (so nothing exports or loads it at start),
#      and the bot without a token exits 2 with a message
# Uses the dev tools from .venv (make install) and pip's cache, so the clean install downloads
# nothing it already has. VENV_PYTHON may name another interpreter for the clean venv.
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
tools=$root/.venv/bin
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
step() { printf '\n== %s\n' "$*"; }

step "lint Dockerfile, compose.yaml, systemd unit"
"$tools/hadolint" Dockerfile
"$tools/check-jsonschema" --builtin-schema vendor.compose-spec compose.yaml deploy/compose.postgres.yaml

step "build step 1: deploy/install.sh into a clean venv"
PYTHON=${VENV_PYTHON:-python3} deploy/install.sh "$work/venv" discord
if command -v systemd-analyze >/dev/null 2>&1; then
  sed "s#/opt/seedrag/venv#$work/venv#g" deploy/systemd/seedrag-bot.service > "$work/seedrag-bot.service"
  # verify exits 0 on an unknown or misspelt key and only warns: any line about the unit fails
  systemd-analyze verify "$work/seedrag-bot.service" > "$work/unit.txt" 2>&1 || { cat "$work/unit.txt"; exit 1; }
  if grep "seedrag-bot.service" "$work/unit.txt"; then exit 1; fi
else
  echo "systemd-analyze is not installed: the systemd unit was not checked" >&2
fi

step "build step 2: deploy/bake-model.sh"
export PATH="$work/venv/bin:$PATH" RAG_MODEL_CACHE="$work/models"
deploy/bake-model.sh

step "start: deploy/start.sh ingest / ask / bot, offline, torch unimportable"
mkdir -p "$work/notorch/torch" "$work/run"
echo 'raise ImportError("torch must not load when the container starts")' > "$work/notorch/torch/__init__.py"
export PYTHONPATH="$work/notorch" SEEDRAG_DATA="$work/data" RAG_SEEDS_DIR="$root/seeds"
unset RAG_INDEX_DIR DISCORD_STATE_FILE DISCORD_TOKEN 2>/dev/null || true
cd "$work/run"
"$root/deploy/start.sh" --version
"$root/deploy/start.sh" ingest | tee "$work/ingest.txt"
grep -q "reused the cached ONNX export in $work/models" "$work/ingest.txt"
test -e "$work/data/index/current"
"$root/deploy/start.sh" ask "When did the VI Consultative Meeting of the Heads of State of Central Asia take place?" \
  | tee "$work/ask.txt"
grep -q "^August 9, 2024 \[1\]" "$work/ask.txt"
status=0
"$root/deploy/start.sh" bot 2> "$work/bot.txt" || status=$?
cat "$work/bot.txt"
test "$status" -eq 2 && grep -q "DISCORD_TOKEN is not set" "$work/bot.txt"

# The PostgreSQL variant (deploy/compose.postgres.yaml): the image with the postgres extra, the
# same start script, the index in the server .ci/run started for the tests (own schema).
if [ -n "${RAG_TEST_STORE_URL:-}" ]; then
  step "start with the index in PostgreSQL: postgres extra, deploy/start.sh ingest / ask"
  (cd "$root" && "$work/venv/bin/python" -m pip install -q ".[discord,postgres]")
  export RAG_STORE_URL="$RAG_TEST_STORE_URL" RAG_PG_SCHEMA=seedrag_deploy_check
  "$root/deploy/start.sh" ingest --rebuild | tee "$work/pg-ingest.txt"
  grep -q "reused the cached ONNX export" "$work/pg-ingest.txt"
  "$root/deploy/start.sh" ask "When did the VI Consultative Meeting of the Heads of State of Central Asia take place?" \
    | tee "$work/pg-ask.txt"
  grep -q "^August 9, 2024 \[1\]" "$work/pg-ask.txt"
fi
printf '\ndeploy checks passed\n'
