"""Shared fixtures: the real bundled model and one real index, built once per test session.

Every test points the app at temp folders (never the project's own .rag_index), and tests that
change documents work on their own copy of the seeds and of the built index.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rag.config import Settings
from rag.embed import SentenceTransformerEmbedder
from rag.engine import Engine
from rag.ingest import ingest_folder

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"


@pytest.fixture(scope="session")
def embedder() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(Settings().embed_model)


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> Settings:
    """Settings whose index over a copy of the seeds has been built once."""
    base = tmp_path_factory.mktemp("built")
    shutil.copytree(SEEDS, base / "seeds")
    settings = Settings(seeds_dir=base / "seeds", index_dir=base / "index")
    ingest_folder(settings)  # the product's own path: ONNX export, then onnxruntime embedding
    return settings


@pytest.fixture(scope="session")
def engine(built) -> Engine:
    return Engine(built)


@pytest.fixture
def workspace(tmp_path, built) -> Settings:
    """A private copy of the seeds and the built index, free to change."""
    shutil.copytree(built.seeds_dir, tmp_path / "seeds")
    shutil.copytree(built.index_dir, tmp_path / "index", symlinks=True)
    return built.with_(seeds_dir=tmp_path / "seeds", index_dir=tmp_path / "index")
