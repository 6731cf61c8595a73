#!/usr/bin/env python3
"""Start or stop a private PostgreSQL + pgvector server: `python -m rag.pg_local` (see there), from a checkout.

    python scripts/pg_local.py start [--dir .rag_pg] [--port 0]   # prints RAG_STORE_URL=postgresql://…
    python scripts/pg_local.py stop  [--dir .rag_pg]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's rag/, installed or not

from rag.pg_local import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
