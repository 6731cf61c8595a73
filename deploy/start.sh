#!/bin/sh
# The container's entry point (and what CI starts, in a clean venv, to check it):
#
#   start.sh bot              run the Discord bot (the default command)
#   start.sh ingest [ARGS]    build or update the index, then exit (compose's one-shot service)
#   start.sh ARGS...          any other `rag` command: ask "QUESTION", sources, repl, --version
#
# Layout, each overridable by its variable: documents in /seeds (read-only), index and the bot's
# state file in $SEEDRAG_DATA (/data, a volume), the model cache baked into the image (RAG_MODEL_CACHE).
# Nothing is fetched from a model hub: the embedding model ships inside a Python package.
set -eu
data=${SEEDRAG_DATA:-/data}
export RAG_SEEDS_DIR="${RAG_SEEDS_DIR:-/seeds}"
export RAG_INDEX_DIR="${RAG_INDEX_DIR:-$data/index}"
export DISCORD_STATE_FILE="${DISCORD_STATE_FILE:-$data/bot_state.sqlite3}"
export RAG_MODEL_CACHE="${RAG_MODEL_CACHE:-/opt/seedrag/models}"
export HF_HUB_OFFLINE=1

command=${1:-bot}
if [ "$#" -gt 0 ]; then shift; fi
case "$command" in
  bot) exec rag-bot "$@" ;;
  *) exec rag "$command" "$@" ;;
esac
