"""The words every command's `--help` shares: where settings come from, which ones, exit codes.

Kept apart from the parsers so `rag`, `python -m bot` and `python -m evals` say the same thing,
and so a test can check that every variable in `.env.example` is described by some `--help`.
Nothing here is imported on the question path except by argparse when help is asked for.
"""

from __future__ import annotations

import argparse

ENV = """settings:
  Read from the environment, then from the first .env file found: the working
  directory's, else the project root's (UTF-8; the environment wins). Relative
  paths are resolved against the .env file's folder. .env.example in the
  project documents every variable."""

GROUPS: dict[str, tuple[tuple[str, str], ...]] = {
    "documents": (
        ("RAG_SEEDS_DIR", "documents folder (seeds)"),
        ("RAG_INDEX_DIR", "index folder (.rag_index)"),
        ("RAG_MODEL_CACHE", "ONNX model exports per user (~/.cache/seedrag/models)"),
        ("RAG_EMBED_MODEL", "embedding model (bundled:all-MiniLM-L6-v2)"),
        ("RAG_EMBED_LANGUAGES", "languages the embedding model knows: en, en,de or multi (en)"),
        ("RAG_CHUNK_SIZE", "chunk size in model tokens (200)"),
        ("RAG_CHUNK_OVERLAP", "chunk overlap in model tokens (40)"),
        ("RAG_FAISS_INDEX", "auto (Flat, HNSW32 from 50k chunks) or a FAISS factory"),
        ("RAG_MAX_FILE_MB", "larger files are skipped with a warning (50)"),
        ("RAG_ALLOW_OUTSIDE_LINKS", "follow links that leave the documents folder (false)"),
        ("RAG_SENTENCE_VECTORS", "per-sentence vectors for the answerer (true)"),
        ("RAG_INGEST_PRECISION", "fp32 or int8 document embedding (fp32)"),
        ("RAG_STORE_URL", "postgresql://… keeps the index in PostgreSQL (empty: files)"),
        ("RAG_PG_SCHEMA", "PostgreSQL schema of the index (seedrag)"),
        ("RAG_PG_HNSW_M", "pgvector HNSW graph degree (16)"),
        ("RAG_PG_EF_CONSTRUCTION", "pgvector HNSW build beam (64)"),
        ("RAG_PG_EF_SEARCH", "pgvector HNSW search beam per question (500)"),
    ),
    "answering": (
        ("RAG_TOP_K", "chunks retrieved per question (5)"),
        ("RAG_RETRIEVER", "hybrid, dense, bm25, ngram or lexical (hybrid)"),
        ("RAG_FUSION", "cc or rrf (cc)"),
        ("RAG_MIN_CONFIDENCE", "abstention threshold, 0-1 (0.34)"),
        ("RAG_LEXICON_FILES", "extra English-German word lists, comma-separated (none)"),
        ("RAG_ANSWER_SENTENCES", "sentences in an extractive answer (2)"),
        ("RAG_MAX_QUESTION_CHARS", "longer questions are cut (2000)"),
        ("RAG_RESPELL", "read a slip in a question word as the document word (true)"),
        ("RAG_QUERY_BACKEND", "onnx or torch (onnx)"),
        ("RAG_LLM_BASE_URL", "OpenAI-compatible endpoint; empty: extractive, no LLM"),
        ("RAG_LLM_MODEL", "model name at that endpoint (gpt-4o-mini)"),
        ("RAG_LLM_API_KEY", "API key, if the endpoint needs one (never printed)"),
        ("RAG_LLM_TIMEOUT", "seconds for all LLM requests of one answer, retries included (30)"),
        ("RAG_LLM_RETRIES", "retries after a connection failure, 408, 429 or 5xx (2)"),
        ("RAG_LLM_MAX_TOKENS", "answer length in tokens (400)"),
        ("RAG_LLM_MAX_CHARS", "characters of a reply read at most, streaming too (4000)"),
        ("RAG_LLM_TEMPERATURE", "sampling temperature (0.1)"),
        ("RAG_LLM_EXPAND_QUERY", "translate questions before retrieval (false)"),
    ),
    "discord": (
        ("DISCORD_TOKEN", "bot token (required to connect)"),
        ("DISCORD_CHANNEL_IDS", "channels it answers in (empty: all)"),
        ("DISCORD_ADMIN_IDS", "users allowed to /reindex besides Manage Server"),
        ("DISCORD_DMS", "who may ask in a DM: members, off or all (members)"),
        ("DISCORD_COOLDOWN_SECONDS", "seconds a user waits between questions (10)"),
        ("DISCORD_HANDLE_MENTIONS", "answer @mentions and replies to answers (true)"),
        ("DISCORD_CONCURRENCY", "engine calls running at once (4)"),
        ("DISCORD_QUEUE_PER_CHANNEL", "questions waiting or running per channel (5)"),
        ("DISCORD_QUEUE_PER_GUILD", "questions waiting or running per server (20)"),
        ("DISCORD_ANSWER_TIMEOUT", "seconds a question may take, at most 600 (120)"),
        ("DISCORD_DRAIN_SECONDS", "on SIGTERM, seconds running answers get (30)"),
        ("DISCORD_STATE_FILE", "answers, conversations, votes (bot_state.sqlite3)"),
        ("DISCORD_USER_HASH_KEY", "key for hashing user ids (empty: one per install)"),
        ("DISCORD_STATE_DAYS", "days answers and votes are kept; 0: forever (90)"),
    ),
    "logging": (
        ("RAG_LOG_LEVEL", "DEBUG, INFO, WARNING or ERROR (WARNING)"),
        ("RAG_PROGRESS_SECONDS", "off a terminal, a progress line this often (15)"),
    ),
}

RAG_EXIT = """exit codes:
  0    done; an answer, including "I couldn't find this in the documents."
  1    a documents or index problem; the message says how to fix it
       (for example `rag ingest --rebuild`)
  2    a usage error, an empty question or a bad setting (the message names
       the variable)
  130  interrupted (Ctrl-C)
  141  the output was closed early (for example `rag sources | head -1`)"""

BOT_EXIT = """exit codes:
  0    the bot was stopped (SIGTERM or Ctrl-C let running answers finish)
  2    a bad setting, DISCORD_TOKEN missing or rejected, Discord unreachable,
       or an unusable state file (one line says what to change)"""

BOT_SYNC_EXIT = """exit codes:
  0    the commands were published (or cleared)
  2    a bad setting, DISCORD_TOKEN missing or rejected, Discord unreachable,
       or --clear without --guild"""

BOT_INVITE_EXIT = """exit codes:
  0    the link was printed
  2    a bad setting, or no application id (pass --client-id or set
       DISCORD_TOKEN)"""

BOT_EXPORT_EXIT = """exit codes:
  0    every vote was written
  2    a bad setting, or no usable state file at DISCORD_STATE_FILE"""

TOOL_EXIT = """exit codes:
  0    done (the table was printed)
  2    a usage error or a bad setting (one line names the variable)"""

MODEL_EXIT = """exit codes:
  0    the export is in the cache (made now, or found and its checksums verified)
  1    the model could not be exported, or the cache folder is not writable
  2    a usage error or a bad setting"""

EVALS_EXIT = """exit codes:
  0    done (reports written)
  1    a dataset, documents or index problem (the message says which)
  2    a usage error or a bad setting"""


def settings_help(*groups: str) -> str:
    """The settings paragraph for whole groups (`"discord"`) or single variables (`"DISCORD_TOKEN"`)."""
    described = {name: text for group in GROUPS.values() for name, text in group}
    lines = [ENV, "", "settings read by this command:"]
    for group in groups:
        pairs = GROUPS[group] if group in GROUPS else ((group, described[group]),)
        lines += [f"  {name:<26}{text}" for name, text in pairs]
    return "\n".join(lines)


def epilog(exit_codes: str, *groups: str) -> str:
    return settings_help(*groups) + "\n\n" + exit_codes


class VersionAction(argparse.Action):
    """`--version` that imports nothing until asked, and says which installed copy runs."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0,
                         help=help or "print the version and where it is installed, then exit")

    def __call__(self, parser, namespace, values, option_string=None):
        print(version_text(parser.prog))
        parser.exit(0)


TOP_LEVEL = ("rag", "bot", "evals")


def shared_top_level() -> dict[str, list[str]]:
    """Other installed distributions that also provide one of our top-level packages.

    The names are generic (OpenAI's eval harness, for one, is also `evals`), and pip lets the
    last install overwrite the other's files, so `--version` says when that has happened.
    """
    from importlib.metadata import packages_distributions

    owners = packages_distributions()
    out = {}
    for name in TOP_LEVEL:
        others = sorted({d for d in owners.get(name, []) if d.lower().replace("_", "-") != "seedrag"})
        if others:
            out[name] = others
    return out


def version_text(prog: str) -> str:
    import platform
    from pathlib import Path

    import rag

    lines = [f"{prog} (seedrag) {rag.__version__}",
             f"package: {Path(rag.__file__).resolve().parent}",
             f"python: {platform.python_version()}"]
    for name, others in shared_top_level().items():
        lines.append(f"warning: the top-level package '{name}' is also installed by {', '.join(others)}; "
                     "they overwrite each other's files: install seedrag in its own virtualenv (README, 'Install')")
    return "\n".join(lines)


def wrap(text: str) -> str:
    import textwrap

    return textwrap.fill(text, 79)


def add_command(sub, name: str, summary: str, description: str, exit_codes: str,
                *groups: str) -> argparse.ArgumentParser:
    """A subcommand whose --help says what it does, the settings it reads and its exit codes."""
    return sub.add_parser(name, help=summary, description=wrap(description), epilog=epilog(exit_codes, *groups),
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def make_parser(prog: str, description: str, exit_codes: str, *groups: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=wrap(description), epilog=epilog(exit_codes, *groups),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action=VersionAction)
    return p
