"""The core's error hierarchy; each front end turns these into its own message (exit code, reply, row)."""


class RagError(Exception):
    """Base for errors a user can act on; `str(err)` is the message to show: what went wrong
    (`reason`) and, where there is one, what to do about it (`fix`), so a caller that words the
    remedy its own way (the engine re-indexes by itself) never has to take the message apart."""

    def __init__(self, reason: str = "", fix: str = "") -> None:
        super().__init__(f"{reason}; {fix}" if fix else reason)
        self.reason = reason
        self.fix = fix


class ConfigError(RagError):
    """A setting has a bad value; the message names the variable."""


class BadQuestion(RagError):
    """The question is empty or unusable."""


class SeedsMissing(RagError):
    """The documents folder does not exist or holds nothing indexable."""


class IndexMissing(RagError):
    """No index has been built yet."""


class IndexCorrupt(RagError):
    """The stored index cannot be read; rebuilding fixes it."""


class IndexIncompatible(RagError):
    """The stored index was built by another format, model or chunking."""


class LLMUnavailable(RagError):
    """The LLM endpoint failed after retries; callers fall back to extractive answers."""


class IngestBusy(RagError):
    """Another ingest is writing this index folder right now."""


class IngestFailed(RagError):
    """An ingest could not finish (disk full, permissions, not a folder); the previous index is unchanged."""


class StoreUnavailable(RagError):
    """The database holding the index cannot be reached (after retries); the message never holds a password."""
