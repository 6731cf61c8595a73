"""The ONNX copy of the embedding model that ingest and queries run: made once per model, checked.

The first ingest with a model exports it (the only time torch is imported) into a cache beside
the index, keyed by model and EXPORT_VERSION so a better export reaches old indexes at their next
ingest. A copy that disagrees with sentence-transformers (cosine < 0.9999) is refused, and then
sentence-transformers does the embedding itself.

The optional int8 copy quantizes only the weight matmuls, per output channel. Quantizing the
attention matmuls too measured a worst cosine of 0.89 against fp32 here; weights only, 0.985.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import warnings
from pathlib import Path

import numpy as np

from rag.embed import META_FILE, ONNX_FILE, TOKENIZER_FILE, OnnxEmbedder, SentenceTransformerEmbedder

log = logging.getLogger(__name__)

# 2: eager attention. The SDPA graph spent ~7% of its time in IsNaN/Where mask handling.
EXPORT_VERSION = 2
INT8_FILE = "model.int8.onnx"
PRECISIONS = ("fp32", "int8")
PROBE = [
    "The VI Consultative Meeting took place on August 9, 2024.",
    "Präsident Tokajew betonte die Rolle der Neutralität Turkmenistans. " * 12,
    "x",
    "Astana hosted the foreign ministers of Central Asia and the European Union to discuss "
    "transport corridors, water security and critical raw materials.",
]


def model_cache_dir(index_dir: Path, model: str) -> Path:
    key = f"{model}|onnx-v{EXPORT_VERSION}"
    return index_dir / "models" / hashlib.sha1(key.encode()).hexdigest()[:12]


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


def _drop_older_exports(keep: Path, model: str) -> None:
    """Remove this model's copies from earlier export versions (snapshots hold their own links)."""
    for folder in keep.parent.iterdir():
        try:
            same_model = json.loads((folder / META_FILE).read_text()).get("model") == model
        except (OSError, ValueError, AttributeError):  # not an export folder of ours: leave it
            continue
        if folder != keep and same_model:
            shutil.rmtree(folder, ignore_errors=True)


def load_ingest_embedder(index_dir: Path, model: str, embedder=None, precision: str = "fp32"):
    """The embedder ingest should use, and the folder of the fp32 ONNX copy (None if unavailable).

    The snapshot always gets the fp32 copy for queries: int8 only speeds up embedding documents.
    """
    cache = model_cache_dir(index_dir, model)
    if not (cache / ONNX_FILE).exists():
        reference = embedder if isinstance(embedder, SentenceTransformerEmbedder) else SentenceTransformerEmbedder(model)
        tmp = cache.with_name(cache.name + f".tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            export_onnx(reference, tmp)
            shutil.rmtree(cache, ignore_errors=True)
            os.rename(tmp, cache)
            _drop_older_exports(cache, model)
        except Exception as err:  # an exotic model may not export; then torch does all the work
            shutil.rmtree(tmp, ignore_errors=True)
            log.warning("ONNX export of %s failed (%s); using sentence-transformers", model, err)
            return embedder or reference, None
    if embedder is not None:
        return embedder, cache
    model_file = ONNX_FILE
    if precision == "int8":
        try:
            if not (cache / INT8_FILE).exists():
                quantize_int8(cache, model)
            model_file = INT8_FILE
        except Exception as err:
            log.warning("int8 quantization of %s failed (%s); embedding in fp32", model, err)
    meta = json.loads((cache / META_FILE).read_text()) if (cache / META_FILE).exists() else {}
    embedder = OnnxEmbedder(
        cache, model, int(meta.get("max_tokens", 256)), threads=1, workers=os.cpu_count() or 1,
        model_file=model_file,
    )
    return embedder, cache
