# syntax=docker/dockerfile:1
# seedrag as a service: the Discord bot by default, or any `rag` command. CPU-only torch, a
# non-root user, the index and the bot's state on the /data volume, the documents mounted at /seeds, and
# the ONNX model export baked in at build time so the container starts offline.
#
#   docker build -t seedrag .
#   docker run --rm -v "$PWD/seeds:/seeds:ro" -v seedrag-data:/data seedrag ingest
#   docker run --rm -v "$PWD/seeds:/seeds:ro" -v seedrag-data:/data seedrag ask "When did ...?"
#   docker run -d --env-file .env -v "$PWD/seeds:/seeds:ro" -v seedrag-data:/data seedrag
#
# Every step below is a script that CI also runs in a clean venv (deploy/check.sh).
FROM python:3.11-slim-bookworm

# Extras to install: discord (the bot); add postgres for an index in PostgreSQL + pgvector
# (deploy/compose.postgres.yaml sets it).
ARG SEEDRAG_EXTRAS=discord

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/seedrag/venv/bin:$PATH \
    RAG_MODEL_CACHE=/opt/seedrag/models \
    HF_HUB_OFFLINE=1

RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/seedrag seedrag \
 && install -d -o seedrag -g seedrag /data /seeds /opt/seedrag/models

WORKDIR /opt/seedrag/src
COPY pyproject.toml README.md LICENSE ./
COPY deploy/ deploy/
COPY rag/ rag/
COPY bot/ bot/
COPY evals/ evals/

# The CPU build of torch from the PyTorch CPU index, then the project with its extras.
# The cache mount keeps pip's downloads between builds without putting them in the image.
RUN --mount=type=cache,target=/root/.cache/pip deploy/install.sh /opt/seedrag/venv "$SEEDRAG_EXTRAS"

# Exported as the service user, so it may refresh the cache's check stamps at run time.
USER 10001:10001
RUN deploy/bake-model.sh

VOLUME ["/data"]
WORKDIR /data
ENTRYPOINT ["/opt/seedrag/src/deploy/start.sh"]
CMD ["bot"]
