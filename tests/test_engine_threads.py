"""The engine is called from several threads at once (the bot's worker lanes)."""

from __future__ import annotations

import sys
import threading

import numpy as np

from rag.config import Settings
from rag.engine import QUERY_CACHE, Engine


class InstantEmbedder:
    """Stands in for the model only to make the race window reachable: with real embedding
    (milliseconds a query) the cache's few unlocked steps almost never interleave in a test's time."""

    def embed_batch(self, texts):
        return [np.full(4, len(t), dtype=np.float32) for t in texts]


def test_the_query_vector_cache_survives_threads_evicting_what_others_just_found():
    engine = Engine(Settings(), auto_ingest=False)
    engine._embedder = InstantEmbedder()
    errors: list[BaseException] = []

    def ask(k: int) -> None:
        try:
            for i in range(100_000):  # a full cache: every miss evicts the oldest, which others may just have hit
                text = str((i * 7 + k * 13) % (QUERY_CACHE + 2))
                assert engine.embed_query(text)[0] == len(text)
        except BaseException as err:  # noqa: BLE001  reported below
            errors.append(err)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        threads = [threading.Thread(target=ask, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    assert not errors, errors[:3]
    assert len(engine._qcache) <= QUERY_CACHE
