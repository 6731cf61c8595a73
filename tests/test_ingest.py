import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from rag.chunk import chunk_document, make_splitter
from rag.engine import Engine
from rag.errors import IndexCorrupt, SeedsMissing
from rag.ingest import ingest_folder
from rag.load import load_documents
from rag.model_cache import load_ingest_embedder
from rag.sentences import split_sentence_texts
from rag.store import load_snapshot


def test_documents_have_metadata_and_german_is_detected(built):
    docs = {d.source: d for d in load_documents(built.seeds_dir)[0]}
    assert len(docs) == 5
    assert docs["002_ddc9d047bacb3bd0.txt"].language == "de"
    assert all(d.language == "en" for s, d in docs.items() if s != "002_ddc9d047bacb3bd0.txt")
    assert docs["000_f95afc1178a02e7b.txt"].date == "2024-10-15"
    assert docs["003_07e049bc62076820.txt"].date == "2016-11-18"
    assert "161117_koreacentralasia_art1.jpg" not in docs["003_07e049bc62076820.txt"].text
    assert "Leave a review" not in docs["001_693447a3f6ff537d.txt"].text
    assert "commvisory" not in docs["002_ddc9d047bacb3bd0.txt"].text.lower()


def test_chunks_cover_every_sentence_and_ids_are_stable(built, embedder):
    splitter = make_splitter(built.chunk_size, built.chunk_overlap, embedder.token_ids)
    for doc in load_documents(built.seeds_dir)[0]:
        chunks = chunk_document(doc, splitter)
        joined = [" ".join(c.text.split()) for c in chunks]
        for sentence in split_sentence_texts(doc.text):
            s = " ".join(sentence.split())
            assert any(s in j for j in joined), f"{doc.source}: sentence lost: {s[:60]}"
        assert [c.id for c in chunks] == [c.id for c in chunk_document(doc, splitter)]
        assert all(len(embedder.token_ids(c.text)) <= built.chunk_size for c in chunks)


def test_saved_index_loads_with_identical_results(built, embedder):
    snap = load_snapshot(built.index_dir)
    again = load_snapshot(built.index_dir)
    q = embedder.embed_batch(["Where was the parliamentary meeting with South Korea held?"])
    d1, i1 = snap.faiss_index.search(q, 5)
    d2, i2 = again.faiss_index.search(q, 5)
    assert (i1 == i2).all() and (d1 == d2).all()
    assert [c.id for c in snap.chunks] == [c.id for c in again.chunks]
    # The stored vectors are the model's vectors for the stored chunk texts.
    fresh = embedder.embed_batch([snap.chunks[0].text])[0]
    assert float(fresh @ snap.vectors[0]) > 0.9999


def test_second_ingest_embeds_nothing_and_a_changed_file_only_its_chunks(workspace, embedder):
    assert ingest_folder(workspace, embedder=embedder).chunks_embedded == 0
    path = workspace.seeds_dir / "004_9ed8f173f51d1787.txt"
    path.write_text(path.read_text(encoding="utf-8") + "\n\nThe delegation also visited Ghent on a Tuesday.", encoding="utf-8")
    report = ingest_folder(workspace, embedder=embedder)
    n_doc_chunks = len(load_snapshot(workspace.index_dir).manifest.documents[path.name].chunk_ids)
    assert (report.updated, report.unchanged, report.chunks_embedded) == (1, 4, n_doc_chunks)
    (workspace.seeds_dir / "003_07e049bc62076820.txt").unlink()
    report = ingest_folder(workspace, embedder=embedder)
    assert (report.removed, report.chunks_embedded) == (1, 0)
    assert "003_07e049bc62076820.txt" not in load_snapshot(workspace.index_dir).manifest.documents


def test_changed_chunking_triggers_full_rebuild(workspace, embedder):
    report = ingest_folder(workspace.with_(chunk_size=128, chunk_overlap=20), embedder=embedder)
    assert report.rebuilt and "chunking" in report.rebuilt
    assert report.chunks_embedded == report.chunks_total > 0


def test_bad_files_are_skipped_with_a_warning_and_the_rest_indexed(workspace, embedder, caplog):
    (workspace.seeds_dir / "empty.txt").write_bytes(b"")
    (workspace.seeds_dir / "binary.txt").write_bytes(b"\x00\x01\x02PK\x00" * 50)
    (workspace.seeds_dir / "latin1.txt").write_bytes("Caf\xe9 na\xefve".encode("latin-1"))
    with caplog.at_level(logging.WARNING):
        report = ingest_folder(workspace, embedder=embedder)
    assert {s.source for s in report.skipped} == {"empty.txt", "binary.txt", "latin1.txt"}
    assert report.unchanged == 5
    for name in ("empty.txt", "binary.txt", "latin1.txt"):
        assert name in caplog.text


def test_missing_seeds_folder_is_a_clear_error(workspace, tmp_path):
    with pytest.raises(SeedsMissing, match="does not exist"):
        ingest_folder(workspace.with_(seeds_dir=tmp_path / "nowhere"))


def test_interrupted_ingest_leaves_the_previous_index_usable(workspace, embedder, monkeypatch):
    import faiss

    before = load_snapshot(workspace.index_dir).folder
    path = workspace.seeds_dir / "000_f95afc1178a02e7b.txt"
    path.write_text(path.read_text(encoding="utf-8") + "\n\nA new paragraph.", encoding="utf-8")

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(faiss, "write_index", boom)
    with pytest.raises(KeyboardInterrupt):
        ingest_folder(workspace, embedder=embedder)
    monkeypatch.undo()
    snap = load_snapshot(workspace.index_dir)
    assert snap.folder == before
    assert not [p for p in (workspace.index_dir / "snapshots").iterdir() if p.name.startswith(".tmp")]


def test_corrupt_index_gives_the_fix_not_a_traceback(workspace):
    folder = load_snapshot(workspace.index_dir).folder
    (folder / "faiss.index").write_bytes(b"garbage")
    with pytest.raises(IndexCorrupt, match="rag ingest --rebuild"):
        load_snapshot(workspace.index_dir)
    engine = Engine(workspace.with_(seeds_dir=workspace.seeds_dir), auto_ingest=True)
    with pytest.raises(IndexCorrupt):
        engine.ask("When did the meeting take place?")


def test_index_from_an_older_pipeline_is_rebuilt_before_answering(workspace):
    """After an upgrade that bumps the pipeline version, questions answer (with a note), not fail."""
    import json

    from rag.store import PIPELINE_VERSION

    manifest_path = load_snapshot(workspace.index_dir).folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["pipeline_version"] = PIPELINE_VERSION - 1
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    answer = Engine(workspace).ask("When did the VI Consultative Meeting of the Heads of State of Central Asia take place?")
    assert "August 9, 2024" in answer.text
    assert any(note.startswith("indexed ") for note in map(str, answer.notes))
    assert load_snapshot(workspace.index_dir).manifest.pipeline_version == PIPELINE_VERSION


def test_a_manifest_without_the_newer_fields_reads_as_its_version_built_it(workspace, embedder):
    """An index written before `lexical_kinds` and `ingest_precision` were kept is updated, not
    rebuilt: the missing fields read as what that version did (both channels, fp32)."""
    manifest_path = load_snapshot(workspace.index_dir).folder / "manifest.json"
    stored = json.loads(manifest_path.read_text(encoding="utf-8"))
    for key in ("lexical_kinds", "ingest_precision", "embedder", "skipped"):
        del stored[key]
    manifest_path.write_text(json.dumps(stored), encoding="utf-8")
    snap = load_snapshot(workspace.index_dir)
    assert set(snap.lexical) == {"bm25", "ngram"} and snap.manifest.languages == {"en", "de"}
    report = ingest_folder(workspace, embedder=embedder)
    assert report.rebuilt is None and report.chunks_embedded == 0 and report.unchanged > 0


def test_the_manifest_round_trips_and_one_missing_its_dimension_is_corrupt(workspace):
    from rag.index import Manifest

    manifest_path = load_snapshot(workspace.index_dir).folder / "manifest.json"
    stored = json.loads(manifest_path.read_text(encoding="utf-8"))
    assert Manifest.from_json(stored).to_json() == stored
    del stored["dim"]
    manifest_path.write_text(json.dumps(stored), encoding="utf-8")
    with pytest.raises(IndexCorrupt, match=r"manifest .* unreadable \(no 'dim' entry\).*rag ingest --rebuild"):
        load_snapshot(workspace.index_dir)


def test_stale_index_is_refreshed_on_ask(workspace, embedder):
    (workspace.seeds_dir / "extra.md").write_text(
        "# Falcon survey\n\nThe Saker falcon census in the Altyn-Emel park counted 412 birds.", encoding="utf-8")
    answer = Engine(workspace).ask("How many Saker falcons were counted in Altyn-Emel?")
    assert not answer.abstained
    assert answer.citations[0].source == "extra.md"
    assert "412" in answer.text


def test_parallel_bulk_embedding_matches_one_text_at_a_time(built):
    embedder, _ = load_ingest_embedder(built.model_cache, built.embed_model)
    embedder.workers = 2  # also on a one-core CI runner
    texts = [c.text for c in load_snapshot(built.index_dir).chunks]
    bulk = embedder.embed_batch(texts)
    single = np.stack([embedder.embed_batch([t])[0] for t in texts])
    assert float((bulk * single).sum(axis=1).min()) > 0.99999


def test_int8_ingest_is_opt_in_rebuilds_and_still_cites_the_right_source(workspace):
    fp32 = load_snapshot(workspace.index_dir).vectors.copy()
    int8 = workspace.with_(ingest_precision="int8")
    report = ingest_folder(int8)
    assert report.rebuilt == "ingest precision fp32 → int8"
    snap = load_snapshot(workspace.index_dir)
    assert snap.manifest.ingest_precision == "int8"
    cos = (snap.vectors * fp32).sum(axis=1)
    assert cos.min() > 0.97 and cos.mean() < 0.9999  # the quantized model, close to fp32
    answer = Engine(int8).ask("When did the VI Consultative Meeting of the Heads of State of Central Asia take place?")
    assert answer.citations[0].source == "001_693447a3f6ff537d.txt"
    assert answer.text.startswith("August 9, 2024 [1]")
    assert ingest_folder(int8).chunks_embedded == 0


def test_no_op_ingest_opens_no_model(workspace, monkeypatch):
    import rag.embed

    def no_model(*args, **kwargs):
        raise AssertionError("a no-op ingest loaded a model")

    monkeypatch.setattr(rag.embed.OnnxEmbedder, "__init__", no_model)
    monkeypatch.setattr(rag.embed.SentenceTransformerEmbedder, "__init__", no_model)
    report = ingest_folder(workspace)
    assert report.chunks_embedded == 0
    assert report.model_export.startswith("reused the cached ONNX export")


def test_onnx_copy_matches_sentence_transformers_on_hundreds_of_texts(built, embedder):
    from evals.datasets import load_qa

    snap = load_snapshot(built.index_dir)
    sentences = [s for c in snap.chunks for s in c.sentence_texts()]
    texts = [c.text for c in snap.chunks] + sentences + [" ".join(p) for p in zip(sentences, sentences[1:])]
    texts += [d.text for d in load_documents(built.seeds_dir)[0]]  # longer than 256 tokens: truncated alike
    texts += [s.upper() for s in sentences[:40]]
    texts += [q.question for q in load_qa(Path(__file__).parents[1] / "evals" / "seeds_qa.jsonl")]
    assert len(texts) >= 300
    onnx, _ = load_ingest_embedder(built.model_cache, built.embed_model)
    cos = (onnx.embed_batch(texts) * embedder.embed_batch(texts)).sum(axis=1)
    assert float(cos.min()) >= 0.9999, texts[int(cos.argmin())][:80]
