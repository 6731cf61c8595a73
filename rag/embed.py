"""Text → unit vectors. Two interchangeable embedders behind one method, `embed_batch`.

sentence-transformers (torch) is the reference and the ingest path. Importing it costs seconds, so
at ingest the same model is also exported to ONNX next to the index, and queries run it through
onnxruntime + tokenizers: the query path never imports torch. The export is checked against the
reference (cosine ≥ 0.9999) before it is written.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Protocol

import numpy as np

from rag.config import resolve_model_path

log = logging.getLogger(__name__)

ONNX_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"


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
        # encode() sorts by length internally, so batches carry little padding.
        vecs = self.model.encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True,
            convert_to_numpy=True, show_progress_bar=progress,
        )
        return np.ascontiguousarray(vecs, dtype=np.float32)

    def export_onnx(self, folder: Path) -> None:
        """Write model.onnx and tokenizer.json for the torch-free query path, after checking them."""
        import torch

        transformer = self.model[0].auto_model.eval()

        class _Wrapper(torch.nn.Module):
            def __init__(self, inner):
                super().__init__()
                self.inner = inner

            def forward(self, input_ids, attention_mask, token_type_ids):
                return self.inner(
                    input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
                ).last_hidden_state

        sample = self.model.tokenizer(["a b c", "a longer example text"], padding=True, return_tensors="pt")
        if "token_type_ids" not in sample:
            sample["token_type_ids"] = torch.zeros_like(sample["input_ids"])
        names = ["input_ids", "attention_mask", "token_type_ids"]
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _Wrapper(transformer), tuple(sample[n] for n in names), str(folder / ONNX_FILE),
                input_names=names, output_names=["last_hidden_state"],
                dynamic_axes={n: {0: "batch", 1: "seq"} for n in names + ["last_hidden_state"]},
                opset_version=17, dynamo=False,
            )
        self.model.tokenizer.backend_tokenizer.save(str(folder / TOKENIZER_FILE))
        probe = [
            "The VI Consultative Meeting took place on August 9, 2024.",
            "Präsident Tokajew betonte die Rolle der Neutralität Turkmenistans. " * 12,
            "x",
        ]
        onnx_vecs = OnnxEmbedder(folder, self.name, self.max_tokens).embed_batch(probe)
        cos = (onnx_vecs * self.embed_batch(probe)).sum(axis=1)
        if float(cos.min()) < 0.9999:
            raise RuntimeError(f"ONNX export disagrees with sentence-transformers (cosine {cos.min():.5f})")


class OnnxEmbedder:
    """Query-time embedder: onnxruntime + tokenizers, mean pooling, L2 normalization."""

    def __init__(self, folder: Path, name: str, max_tokens: int = 256, threads: int = 0) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.name = name
        self.tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
        # The bundled tokenizer.json pads and truncates at 128; the model reads up to 256.
        self.tokenizer.enable_truncation(max_tokens)
        self.tokenizer.no_padding()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or min(4, os.cpu_count() or 1)
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(
            str(folder / ONNX_FILE), opts, providers=["CPUExecutionProvider"]
        )
        self.dim = int(self.session.get_outputs()[0].shape[-1] or 0) or 384

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        encs = self.tokenizer.encode_batch(texts)
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
