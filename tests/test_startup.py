"""Settings from anywhere: `.env` in the working directory, paths relative to the file that set them."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rag.config import load_settings
from rag.startup import find_env_file, resolve_environment
from tests.test_answers import MEETING_Q

PATH_VARS = ("RAG_SEEDS_DIR", "RAG_INDEX_DIR", "DISCORD_STATE_FILE")


def rag(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in PATH_VARS}
    return subprocess.run([sys.executable, "-m", "rag", *args], capture_output=True, text=True, cwd=cwd,
                          env={**env, "HF_HUB_OFFLINE": "1"}, timeout=300)


def test_ask_from_another_folder_reads_its_env_file(built, tmp_path):
    project = tmp_path / "my project"
    shutil.copytree(built.seeds_dir, project / "docs")
    (project / ".env").write_text("RAG_SEEDS_DIR=docs\nRAG_INDEX_DIR=state/index\n", encoding="utf-8")
    out = rag(project, "ask", MEETING_Q)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("August 9, 2024 [1]")
    assert (project / "state" / "index" / "current").exists()


def test_relative_paths_resolve_against_the_env_file_folder_and_the_environment_wins(tmp_path):
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    env_file = home / ".env"
    env_file.write_text("RAG_SEEDS_DIR=docs\nRAG_TOP_K=7\nRAG_RETRIEVER=bm25\n", encoding="utf-8")
    environ = {"RAG_RETRIEVER": "dense", "RAG_INDEX_DIR": "idx"}
    settings = load_settings(resolve_environment(environ, env_file, cwd=elsewhere))
    assert settings.seeds_dir == home / "docs"              # from the file: its folder
    assert settings.index_dir == elsewhere / "idx"           # from the environment: the working directory
    assert settings.discord_state_file == home / "bot_state.sqlite3"  # a default: the file's folder
    assert (settings.top_k, settings.retriever) == (7, "dense")
    assert environ["RAG_SEEDS_DIR"] == str(home / "docs")     # subprocesses see the resolved value


def test_word_list_paths_resolve_against_the_env_file_folder_like_other_paths(tmp_path):
    """RAG_LEXICON_FILES in a project's .env works from any folder (the .env folder's rule)."""
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    (home / "lists").mkdir(parents=True)
    elsewhere.mkdir()
    for name in ("a.tsv", "b.tsv"):
        (home / "lists" / name).write_text("word\twort\n", encoding="utf-8")
    (elsewhere / "c.tsv").write_text("house\thaus\n", encoding="utf-8")
    env_file = home / ".env"
    env_file.write_text(f"RAG_LEXICON_FILES=lists/a.tsv, {home / 'lists' / 'b.tsv'}\n", encoding="utf-8")
    settings = load_settings(resolve_environment({}, env_file, cwd=elsewhere))
    assert settings.lexicon_files == (home / "lists" / "a.tsv", home / "lists" / "b.tsv")
    from_environment = {"RAG_LEXICON_FILES": "c.tsv"}  # from the environment: the working directory
    settings = load_settings(resolve_environment(from_environment, env_file, cwd=elsewhere))
    assert settings.lexicon_files == (elsewhere / "c.tsv",)


def test_env_file_in_the_working_directory_comes_first(tmp_path):
    (tmp_path / ".env").write_text("RAG_TOP_K=3\n", encoding="utf-8")
    assert find_env_file(tmp_path) == tmp_path / ".env"


def test_env_file_that_is_not_utf8_is_a_clear_error(tmp_path):
    (tmp_path / ".env").write_bytes("RAG_SEEDS_DIR=Dokumente für Caf\xe9\n".encode("latin-1"))
    out = rag(tmp_path, "ask", "hello")
    assert out.returncode == 2
    assert f"{tmp_path / '.env'} is not UTF-8" in out.stderr and "Traceback" not in out.stderr


def test_missing_documents_folder_names_the_absolute_path_and_how_to_set_it(tmp_path):
    out = rag(tmp_path, "ask", "hello")
    assert out.returncode == 1
    assert str(tmp_path / "seeds") in out.stderr
    assert "RAG_SEEDS_DIR" in out.stderr and ".env" in out.stderr
    assert "Traceback" not in out.stderr


def test_create_bot_without_settings_reads_the_env_file_like_rag(tmp_path, monkeypatch):
    """A library caller of create_bot() gets the same settings as `rag` from that folder."""
    pytest.importorskip("discord")
    from bot.app import create_bot

    for var in PATH_VARS:
        monkeypatch.delenv(var, raising=False)
    (tmp_path / ".env").write_text("DISCORD_STATE_FILE=state/bot.sqlite3\nRAG_TOP_K=3\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    bot = create_bot(engine=object())
    assert bot.settings.discord_state_file == tmp_path / "state" / "bot.sqlite3"
    assert bot.settings.top_k == 3


def test_eval_tools_read_the_env_file_and_name_a_bad_setting_in_one_line(tmp_path):
    (tmp_path / ".env").write_text("RAG_TOP_K=zero\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAG_", "DISCORD_"))}
    for tool in ("evals.grounding", "evals.llm_faults"):
        # From any folder: the package's tools need nothing from tests/ (the scripted LLM is evals/fake_openai.py).
        out = subprocess.run([sys.executable, "-m", tool], capture_output=True, text=True, cwd=tmp_path,
                             env=env, timeout=120)
        assert out.returncode == 2, (tool, out.stdout, out.stderr)
        assert "configuration error" in out.stderr and "RAG_TOP_K" in out.stderr, (tool, out.stderr)
        assert "Traceback" not in out.stderr, tool


HEAVY = ("torch", "llama_index", "scipy", "bm25s", "psycopg", "pgvector", "discord", "transformers",
         "sentence_transformers", "matplotlib", "httpx")


def test_a_real_ask_loads_no_heavy_package(built, tmp_path):
    """Cold start stays fast and the default install suffices: the question path of `rag ask`
    (settings, index, query embedding, retrieval, extractive answer, output) imports none of these."""
    code = ("import sys; from rag.cli import main; code = main(['ask', sys.argv[1]]); "
            f"print('LOADED', sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))); sys.exit(code)")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("RAG_", "DISCORD_"))}, "HF_HUB_OFFLINE": "1",
           "RAG_SEEDS_DIR": str(built.seeds_dir), "RAG_INDEX_DIR": str(built.index_dir)}
    out = subprocess.run([sys.executable, "-c", code, MEETING_Q], capture_output=True, text=True, cwd=tmp_path,
                         env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("August 9, 2024 [1]")  # it really answered from the index
    assert "LOADED []" in out.stdout
