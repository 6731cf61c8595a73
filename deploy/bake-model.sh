#!/bin/sh
# Export the embedding model to ONNX into RAG_MODEL_CACHE now, at image build time, so the
# container starts offline and its first ingest loads no torch. Also what CI runs.
set -eu
export RAG_MODEL_CACHE="${RAG_MODEL_CACHE:-/opt/seedrag/models}"
export HF_HUB_OFFLINE=1
exec python -m rag.model_cache
