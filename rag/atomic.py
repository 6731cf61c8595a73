"""Small JSON files replaced atomically: a reader sees the old content or the new, never half.

Written to a temporary name in the same folder (same file system, so `os.replace` is atomic),
then swapped in. The temporary name carries the process and thread, so concurrent writers never
share one; the last replace wins.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path


def write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)
