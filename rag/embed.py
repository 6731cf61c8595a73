"""Text → unit vectors. Two interchangeable embedders behind one method, `embed_batch`.

sentence-transformers (torch) is the reference. Importing it costs seconds and its encode() is
slower on CPU, so `rag.onnx_export` turns the model into a checked ONNX copy once, and from then
on ingest and queries both run that through onnxruntime + tokenizers and never import torch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import numpy as np

from rag.config import resolve_model_path

ONNX_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
TOKENIZER_FILE = "tokenizer.json"
META_FILE = "embedder.json"


class Embedder(Protocol):
    name: str
    dim: int

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        """Unit-normalized float32 vectors, one row per text."""


class SentenceTransformerEmbedder:
    """The reference embedder; loads the model on first use, never at import."""

    def __init__(self, name: str, batch_size: int = 64) -> None:
        self.name = name
        self.batch_size = batch_size
        self._model = None

    @property
    def model(self):
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing may reach a model hub here
            import transformers
            from sentence_transformers import SentenceTransformer

            transformers.logging.set_verbosity_error()
            transformers.logging.disable_progress_bar()

            self._model = SentenceTransformer(resolve_model_path(self.name), device="cpu")
        return self._model

    @property
    def dim(self) -> int:
        m = self.model
        get = getattr(m, "get_embedding_dimension", None) or m.get_sentence_embedding_dimension
        return int(get())

    @property
    def max_tokens(self) -> int:
        return int(self.model.max_seq_length)

    def token_ids(self, text: str) -> list[int]:
        return self.model.tokenizer.encode(text, add_special_tokens=False)

    def embed_batch(self, texts: list[str], progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        import sys

        from rag.progress import Progress

        # encode() sorts by length internally, so batches carry little padding. Its own bar on a
        # terminal; off one, our steady lines (its bar would be carriage-return noise in a log).
        bar = progress and sys.stderr.isatty()
        with Progress(None, f"embedding {len(texts):,} texts", enabled=progress and not bar):
            vecs = self.model.encode(
                texts, batch_size=self.batch_size, normalize_embeddings=True,
                convert_to_numpy=True, show_progress_bar=bar,
            )
        return np.ascontiguousarray(vecs, dtype=np.float32)


class OnnxEmbedder:
    """onnxruntime + tokenizers, mean pooling, L2 normalization: the query path and the ingest path.

    Many texts are tokenized once, sorted by token length and cut into small batches, so almost
    no padding is computed. With `workers` > 1 those batches run concurrently on a one-thread
    session (onnxruntime releases the GIL): each core then runs whole operators alone instead of
    splitting every small one with the other core, measured here at 1.2x the tokens/s of one
    two-thread session.
    """

    def __init__(
        self, folder: Path, name: str, max_tokens: int = 256, threads: int = 0,
        workers: int = 1, model_file: str = ONNX_FILE,
    ) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.name = name
        self.max_tokens = max_tokens
        self.workers = max(1, workers)
        self._folder = folder
        self._counter = None  # an untruncated tokenizer for chunk sizing, made only at ingest
        self.tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
        # The bundled tokenizer.json pads and truncates at 128; the model reads up to 256.
        self.tokenizer.enable_truncation(max_tokens)
        self.tokenizer.no_padding()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or min(4, os.cpu_count() or 1)
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(folder / model_file), opts, providers=["CPUExecutionProvider"])
        self.dim = int(self.session.get_outputs()[0].shape[-1] or 0) or 384

    def token_ids(self, text: str) -> list[int]:
        if self._counter is None:
            from tokenizers import Tokenizer

            self._counter = Tokenizer.from_file(str(self._folder / TOKENIZER_FILE))
            self._counter.no_truncation()
            self._counter.no_padding()
        return self._counter.encode(text, add_special_tokens=False).ids

    def embed_batch(self, texts: list[str], progress: bool = False, batch_size: int = 4) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        encs = self.tokenizer.encode_batch(texts)
        if len(texts) <= batch_size:
            return self._run(encs)
        from concurrent.futures import ThreadPoolExecutor

        from rag.progress import Progress

        order = np.argsort([len(e.ids) for e in encs], kind="stable")
        batches = [order[start:start + batch_size] for start in range(0, len(texts), batch_size)]
        out = np.zeros((len(texts), self.dim), dtype=np.float32)

        def run(idx: np.ndarray) -> int:
            out[idx] = self._run([encs[i] for i in idx])
            return len(idx)

        with ThreadPoolExecutor(self.workers) as pool, Progress(
            len(texts), "embedding", "text", enabled=progress
        ) as bar:
            for done in pool.map(run, batches):
                bar.update(done)
        return out

    def _run(self, encs) -> np.ndarray:
        width = max(len(e.ids) for e in encs)
        ids = np.zeros((len(encs), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for i, e in enumerate(encs):
            n = len(e.ids)
            ids[i, :n], mask[i, :n], types[i, :n] = e.ids, e.attention_mask, e.type_ids
        hidden = self.session.run(
            None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        )[0]
        m = mask[..., None].astype(np.float32)
        vecs = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
        vecs /= np.clip(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12, None)
        return vecs.astype(np.float32)
