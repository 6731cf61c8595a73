"""What every entry point does first: read .env, build settings, set up logging.

Only entry points call this (the CLI, the eval harness, the bot), so importing the library never
reads the environment. A bad setting returns None after printing one line naming the variable.

Where settings come from, so `rag` works from any folder:
- the process environment wins;
- then the first `.env` found: the working directory's, else the project root's (the source
  checkout this package runs from, if any). Only one file is read, in UTF-8;
- relative paths are resolved against the folder of the `.env` file that set them (or, for a
  value from the environment, against the working directory), and the defaults (`seeds`,
  `.rag_index`, `bot_state.sqlite3`) against the `.env` file's folder when one was found, else the
  working directory. Every path in the settings is therefore absolute, and so is every error
  message that names one.
"""

from __future__ import annotations

import io
import logging
import os
import sys
from collections.abc import MutableMapping
from pathlib import Path

from rag.config import Settings
from rag.errors import ConfigError

NOISY = ("sentence_transformers", "transformers", "httpx", "faiss", "discord")
ENV_FILE = ".env"
# Settings holding paths, with their defaults (relative ones resolve like a relative value).
PATH_SETTINGS = {
    "RAG_SEEDS_DIR": "seeds",
    "RAG_INDEX_DIR": ".rag_index",
    "RAG_MODEL_CACHE": None,  # default is absolute (XDG cache), built by rag.config
    "DISCORD_STATE_FILE": "bot_state.sqlite3",
}
# Settings holding comma-separated paths, each resolved like a path setting (no default).
PATH_LIST_SETTINGS = ("RAG_LEXICON_FILES",)
MODEL_SETTING = "RAG_EMBED_MODEL"  # a path only when such a folder exists; else a model name


def project_root() -> Path | None:
    """The source checkout this package is imported from (None for an installed wheel)."""
    root = Path(__file__).resolve().parents[1]
    return root if (root / "pyproject.toml").is_file() and (root / "rag").is_dir() else None


def find_env_file(cwd: Path | None = None) -> Path | None:
    cwd = Path.cwd() if cwd is None else cwd
    root = project_root()
    for folder in (cwd, root):
        if folder is not None and (folder / ENV_FILE).is_file():
            return (folder / ENV_FILE).absolute()
    return None


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=value pairs of a .env file; ConfigError if it can't be read or is not UTF-8."""
    from dotenv import dotenv_values

    try:
        data = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err.strerror or err}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{path} is not UTF-8 text ({err.reason} at byte {err.start}); save it as UTF-8"
        ) from None
    return {k: v for k, v in dotenv_values(stream=io.StringIO(text)).items() if v is not None}


def _absolute(value: str, base: Path) -> str:
    path = Path(value).expanduser()
    return os.path.normpath(path if path.is_absolute() else base / path)


def _absolute_list(value: str, base: Path) -> str:
    return ",".join(_absolute(part.strip(), base) for part in value.split(",") if part.strip())


def resolve_environment(
    environ: MutableMapping[str, str], env_file: Path | None, cwd: Path | None = None
) -> dict[str, str]:
    """Load `env_file` into `environ` (without overriding) and return the mapping settings read.

    Path settings are made absolute: values from the file against its folder, values from the
    environment against `cwd`, unset ones (defaults) against the file's folder, else `cwd`.
    """
    cwd = Path.cwd() if cwd is None else cwd
    from_file = read_env_file(env_file) if env_file is not None else {}
    file_dir = env_file.parent if env_file is not None else cwd
    for key, value in from_file.items():
        if key in environ:
            continue
        if key in PATH_SETTINGS and value.strip():
            value = _absolute(value.strip(), file_dir)
        elif key in PATH_LIST_SETTINGS:
            value = _absolute_list(value, file_dir)
        elif key == MODEL_SETTING and value.strip() and (file_dir / value.strip()).exists():
            value = _absolute(value.strip(), file_dir)
        environ[key] = value  # children (bench workers, subprocesses) see what we saw
    env = dict(environ)
    for key, default in PATH_SETTINGS.items():
        value = env.get(key, "").strip()
        if value:
            env[key] = _absolute(value, cwd)
        elif default is not None:
            env[key] = _absolute(default, file_dir)
    for key in PATH_LIST_SETTINGS:
        if env.get(key, "").strip():
            env[key] = _absolute_list(env[key], cwd)
    return env


def settings_from_environment() -> Settings:
    """Settings as the entry points read them (.env found, paths made absolute), for library callers.

    Raises ConfigError naming the bad variable; sets up no logging (that is `startup`'s job).
    """
    from rag.config import load_settings

    return load_settings(resolve_environment(os.environ, find_env_file()))


def startup(min_level: str | None = None) -> Settings | None:
    try:
        settings = settings_from_environment()
    except ConfigError as err:
        print(f"configuration error: {err}", file=sys.stderr)
        return None
    configure_logging(settings, min_level)
    from rag import progress

    progress.configure(settings.progress_seconds)
    return settings


def configure_logging(settings: Settings, min_level: str | None = None) -> None:
    level = logging.getLevelName(settings.log_level)
    if min_level is not None:
        level = min(level, logging.getLevelName(min_level))
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in NOISY:
        logging.getLogger(name).setLevel(max(logging.WARNING, level))
