"""The plain llama-index pipeline the benchmark compares against, built the way its docs show:
SimpleDirectoryReader → default SentenceSplitter → HuggingFaceEmbedding → FAISS vector store,
persisted with the storage context and queried through `index.as_retriever()`.

`python -m evals.baseline build SEEDS PERSIST` and `python -m evals.baseline ask PERSIST QUESTION`
are separate processes so the benchmark can time a cold start exactly as for `rag ask`.
"""

from __future__ import annotations

import json
import os
import sys
import time


def _embed_model():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    from rag.config import BUNDLED_MODEL, resolve_model_path

    return HuggingFaceEmbedding(model_name=resolve_model_path(BUNDLED_MODEL), device="cpu")


def build(seeds: str, persist: str) -> dict:
    import faiss
    from llama_index.core import SimpleDirectoryReader, StorageContext, VectorStoreIndex
    from llama_index.vector_stores.faiss import FaissVectorStore

    start = time.perf_counter()
    docs = SimpleDirectoryReader(seeds).load_data()
    store = FaissVectorStore(faiss_index=faiss.IndexFlatL2(384))
    ctx = StorageContext.from_defaults(vector_store=store)
    index = VectorStoreIndex.from_documents(docs, storage_context=ctx, embed_model=_embed_model())
    index.storage_context.persist(persist_dir=persist)
    return {"seconds": time.perf_counter() - start, "documents": len(docs)}


def load(persist: str):
    from llama_index.core import StorageContext, load_index_from_storage
    from llama_index.vector_stores.faiss import FaissVectorStore

    store = FaissVectorStore.from_persist_dir(persist)
    ctx = StorageContext.from_defaults(vector_store=store, persist_dir=persist)
    return load_index_from_storage(ctx, embed_model=_embed_model())


def main(argv: list[str]) -> int:
    if argv[0] == "build":
        print(json.dumps(build(argv[1], argv[2])))
        return 0
    if argv[0] == "ask":
        index = load(argv[1])
        nodes = index.as_retriever(similarity_top_k=5).retrieve(argv[2])
        print(json.dumps({"sources": [n.node.metadata.get("file_name") for n in nodes]}))
        return 0
    print("usage: python -m evals.baseline build SEEDS PERSIST | ask PERSIST QUESTION", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
