"""The llama-index faces: a real BaseRetriever inside llama-index's own RetrieverQueryEngine, and a
query engine returning Response with source nodes. llama-index stays off the CLI's import path."""

import asyncio
import subprocess
import sys

import pytest

VI = "When did the VI Consultative Meeting of the Heads of State of Central Asia take place?"
VI_SOURCE = "001_693447a3f6ff537d.txt"


def test_retriever_returns_scored_chunks_with_their_metadata(engine):
    from llama_index.core.retrievers import BaseRetriever

    from rag.llamaindex import SeedRetriever

    retriever = SeedRetriever(engine, top_k=4)
    assert isinstance(retriever, BaseRetriever)
    nodes = retriever.retrieve(VI)
    assert len(nodes) == 4
    assert nodes[0].node.metadata["source"] == VI_SOURCE
    assert "August 9, 2024" in nodes[0].node.get_content()
    assert [n.score for n in nodes] == sorted((n.score for n in nodes), reverse=True)
    hits, _, _ = engine.retrieve(VI, 4)
    assert [n.node.node_id for n in nodes] == [h.chunk.id for h in hits]
    assert {"title", "date", "language", "chunk"} <= set(nodes[0].node.metadata)


def test_retriever_drops_into_llama_index_retriever_query_engine(engine):
    from llama_index.core.llms import MockLLM
    from llama_index.core.query_engine import RetrieverQueryEngine

    from rag.llamaindex import SeedRetriever

    qe = RetrieverQueryEngine.from_args(SeedRetriever(engine, top_k=3), llm=MockLLM())
    response = qe.query(VI)
    assert [n.node.metadata["source"] for n in response.source_nodes][0] == VI_SOURCE
    assert len(response.source_nodes) == 3


def test_query_engine_returns_the_cited_answer_as_a_response(engine):
    from llama_index.core.base.response.schema import Response

    from rag.llamaindex import SeedQueryEngine

    qe = SeedQueryEngine(engine)
    response = qe.query(VI)
    assert isinstance(response, Response)
    assert str(response).startswith("August 9, 2024 [1]")
    first = response.source_nodes[0]
    assert (first.node.metadata["n"], first.node.metadata["source"]) == (1, VI_SOURCE)
    assert "August 9, 2024" in first.node.get_content()
    assert response.metadata["abstained"] is False
    again = asyncio.run(qe.aquery(VI))
    assert str(again) == str(response)


def test_query_engine_abstains_without_source_nodes(engine):
    from rag.llamaindex import SeedQueryEngine

    response = SeedQueryEngine(engine).query("What is the boiling point of liquid nitrogen on Jupiter's moons?")
    assert response.metadata["abstained"] is True
    assert response.source_nodes == []


@pytest.mark.parametrize("module", ["rag.cli", "rag.engine", "bot.app"])
def test_the_question_path_does_not_import_llama_index_or_psycopg(module):
    code = (f"import sys, {module}; "
            "print(sorted(m for m in sys.modules if m.startswith(('llama_index', 'psycopg', 'pgvector'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
