"""llama-index faces of the engine: a `BaseRetriever` and a query engine, for llama-index users.

    from rag.engine import build_engine
    from rag.llamaindex import SeedQueryEngine, SeedRetriever
    from rag.startup import settings_from_environment

    engine = build_engine(settings_from_environment())   # .env and paths as `rag` reads them
    nodes = SeedRetriever(engine, top_k=5).retrieve("Who chaired the meeting?")   # list[NodeWithScore]
    response = SeedQueryEngine(engine).query("Who chaired the meeting?")         # Response
    print(response, response.source_nodes[0].node.metadata["source"])

`SeedRetriever` returns the hybrid retriever's chunks in the engine's order (fused score, text, and the chunk's
metadata), so it drops into llama-index's own `RetrieverQueryEngine` with any llama-index LLM.
`SeedQueryEngine` answers with this project's engine (extractive or LLM, verified and cited) and
returns a `Response` whose `source_nodes` are the cited passages, numbered as in the text;
an abstention ("I couldn't find this in the documents.") has no source nodes.

This module imports llama-index, which takes a second or more: nothing on the CLI's or the bot's
question path imports it, so their cold start does not pay for it.
"""

from __future__ import annotations

import asyncio

from llama_index.core.base.base_query_engine import BaseQueryEngine
from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.base.response.schema import Response
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from rag.records import Answer, Citation, Hit


def hit_node(hit: Hit, score: float | None = None) -> NodeWithScore:
    """A retrieved chunk as llama-index sees one: its text, its metadata, its fused score (or `score`)."""
    c = hit.chunk
    node = TextNode(
        id_=c.id, text=c.text,
        metadata={"source": c.source, "title": c.title, "date": c.date, "language": c.language, "chunk": c.n,
                  "dense": round(hit.dense, 6), "ranks": {k: v for k, v in hit.ranks.items() if v is not None}},
        excluded_embed_metadata_keys=["dense", "ranks"], excluded_llm_metadata_keys=["dense", "ranks", "chunk"],
    )
    return NodeWithScore(node=node, score=float(hit.score if score is None else score))


def citation_node(c: Citation) -> NodeWithScore:
    """A cited passage: the supporting sentences, where they come from, and the citation number."""
    node = TextNode(id_=f"{c.source}#cite{c.n}", text=c.snippet,
                    metadata={"n": c.n, "source": c.source, "title": c.title, "date": c.date})
    return NodeWithScore(node=node, score=float(c.score))


class SeedRetriever(BaseRetriever):
    """The engine's hybrid retrieval (dense + BM25 + n-grams, fused) as a llama-index retriever."""

    def __init__(self, engine, top_k: int | None = None) -> None:
        super().__init__()
        self.engine = engine  # rag.engine.Engine
        self.top_k = top_k

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits, _, _ = self.engine.retrieve(query_bundle.query_str, self.top_k)
        # The engine orders hits by their best sentence (rag.answer.ExtractiveAnswerer.rerank), not
        # by fused score alone; the fused scores, best first, follow that order so that a node's
        # score falls with its rank as llama-index's postprocessors expect.
        scores = sorted((h.score for h in hits), reverse=True)
        return [hit_node(h, s) for h, s in zip(hits, scores)]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return await asyncio.to_thread(self._retrieve, query_bundle)


class SeedQueryEngine(BaseQueryEngine):
    """The engine's cited answers as a llama-index query engine returning `Response`."""

    def __init__(self, engine) -> None:
        super().__init__(callback_manager=None)
        self.engine = engine

    def _get_prompt_modules(self) -> dict:
        return {}

    def _query(self, query_bundle: QueryBundle) -> Response:
        return to_response(self.engine.ask(query_bundle.query_str))

    async def _aquery(self, query_bundle: QueryBundle) -> Response:
        return await asyncio.to_thread(self._query, query_bundle)


def to_response(answer: Answer) -> Response:
    return Response(
        response=answer.text,
        source_nodes=[citation_node(c) for c in answer.citations],
        metadata={"abstained": answer.abstained, "backend": answer.backend, "notes": [str(n) for n in answer.notes],
                  "confidence": answer.confidence, "retrieved": list(answer.retrieved)},
    )
