"""The ONNX copy of the embedding model that ingest and queries run: made once per model, checked.

The first ingest with a model exports it (the only time torch is imported) into the user's model
cache (`rag.model_cache`, which decides where, when and under which lock). A copy that disagrees
with sentence-transformers (cosine < 0.9999) is refused, and then sentence-transformers does the
embedding itself.

The optional int8 copy quantizes only the weight matmuls, per output channel. Quantizing the
attention matmuls too measured a worst cosine of 0.89 against fp32 here; weights only, 0.985.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path

import numpy as np

from rag.embed import INT8_FILE, META_FILE, ONNX_FILE, TOKENIZER_FILE, OnnxEmbedder, SentenceTransformerEmbedder

log = logging.getLogger(__name__)

PROBE = [
    "The VI Consultative Meeting took place on August 9, 2024.",
    "Präsident Tokajew betonte die Rolle der Neutralität Turkmenistans. " * 12,
    "x",
    "Astana hosted the foreign ministers of Central Asia and the European Union to discuss "
    "transport corridors, water security and critical raw materials.",
]


def export_onnx(reference: SentenceTransformerEmbedder, folder: Path) -> None:
    """Write model.onnx, tokenizer.json and embedder.json into folder, after checking them."""
    import torch

    transformer = reference.model[0].auto_model.eval()

    class _Wrapper(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    sample = reference.model.tokenizer(["a b c", "a longer example text"], padding=True, return_tensors="pt")
    if "token_type_ids" not in sample:
        sample["token_type_ids"] = torch.zeros_like(sample["input_ids"])
    names = ["input_ids", "attention_mask", "token_type_ids"]
    attn = getattr(transformer.config, "_attn_implementation", None)
    try:
        if attn is not None:
            transformer.config._attn_implementation = "eager"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _Wrapper(transformer), tuple(sample[n] for n in names), str(folder / ONNX_FILE),
                input_names=names, output_names=["last_hidden_state"],
                dynamic_axes={n: {0: "batch", 1: "seq"} for n in names + ["last_hidden_state"]},
                opset_version=17, dynamo=False,
            )
    finally:
        if attn is not None:
            transformer.config._attn_implementation = attn
    reference.model.tokenizer.backend_tokenizer.save(str(folder / TOKENIZER_FILE))
    (folder / META_FILE).write_text(json.dumps({"model": reference.name, "max_tokens": reference.max_tokens}))
    cos = _cosines(OnnxEmbedder(folder, reference.name, reference.max_tokens).embed_batch(PROBE),
                   reference.embed_batch(PROBE))
    if cos.min() < 0.9999:
        raise RuntimeError(f"ONNX export disagrees with sentence-transformers (cosine {cos.min():.5f})")


def quantize_int8(folder: Path, name: str, min_cosine: float = 0.97) -> None:
    """Write model.int8.onnx beside model.onnx: int8 weights, activations quantized per batch."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(folder / ONNX_FILE)).graph
    weights = {init.name for init in graph.initializer}
    nodes = [n.name for n in graph.node if n.op_type == "MatMul" and any(i in weights for i in n.input)]
    tmp = folder / f"{INT8_FILE}.tmp-{os.getpid()}"
    hush = _DropRootWarning("Please consider to run pre-processing")  # advice for conv nets
    logging.getLogger().addFilter(hush)
    try:
        quantize_dynamic(
            str(folder / ONNX_FILE), str(tmp), weight_type=QuantType.QInt8, per_channel=True,
            op_types_to_quantize=["MatMul"], nodes_to_quantize=nodes,
        )
        cos = _cosines(OnnxEmbedder(folder, name, model_file=tmp.name).embed_batch(PROBE),
                       OnnxEmbedder(folder, name).embed_batch(PROBE))
        if cos.min() < min_cosine:
            raise RuntimeError(f"int8 model strays from fp32 (cosine {cos.min():.4f} < {min_cosine})")
        os.replace(tmp, folder / INT8_FILE)
    finally:
        logging.getLogger().removeFilter(hush)
        tmp.unlink(missing_ok=True)


class _DropRootWarning(logging.Filter):
    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1)
