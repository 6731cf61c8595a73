"""The examples in the pipeline's docstrings hold: they are the shortest statement of what a
function does, so one that drifts from the code misleads the next reader."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

RAG = Path(__file__).resolve().parents[1] / "rag"
WITH_EXAMPLES = sorted(p.stem for p in RAG.glob("*.py") if p.stem != "__main__" and ">>>" in p.read_text(encoding="utf-8"))


@pytest.mark.parametrize("module", WITH_EXAMPLES)
def test_docstring_examples_hold(module):
    result = doctest.testmod(importlib.import_module(f"rag.{module}"))
    assert result.attempted > 0 and result.failed == 0, result
