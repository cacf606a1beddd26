"""A content-addressed judgement cache on disk, so that a repeated or resumed run never pays twice.

The key is a hash of everything that determines the judge's answer: endpoint model, messages,
sampling settings and the vote number (so several votes on the same pair stay distinct).
SQLite in WAL mode is safe across processes; each process keeps one connection.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from writing_rl.judge.errors import JudgeCacheError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS judgements (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    text TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    created REAL NOT NULL DEFAULT ((julianday('now') - 2440587.5) * 86400.0)
)
"""


def cache_key(request: Mapping[str, Any], vote: int) -> str:
    """sha256 over the canonical JSON of the request body (never headers) and the vote number."""
    canonical = json.dumps({"request": request, "vote": vote}, sort_keys=True, ensure_ascii=False,
                           separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class JudgementCache:
    """Maps cache_key -> (text, prompt_tokens, completion_tokens)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if self.path.is_dir():
            raise JudgeCacheError(f"judge cache {self.path}: is a directory; give a file name such as "
                                  f"{self.path / 'judge_cache.sqlite'}")
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30.0,
                                       isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
        except (sqlite3.DatabaseError, OSError) as exc:
            raise JudgeCacheError(
                f"judge cache {self.path}: {exc}; delete the file or point cache_path elsewhere"
            ) from exc

    def get(self, key: str) -> tuple[str, int, int] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT text, prompt_tokens, completion_tokens FROM judgements WHERE key = ?", (key,)
            ).fetchone()
        return None if row is None else (row[0], int(row[1]), int(row[2]))

    def put(self, key: str, model: str, text: str, prompt_tokens: int, completion_tokens: int) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO judgements (key, model, text, prompt_tokens, completion_tokens)"
                " VALUES (?, ?, ?, ?, ?)",
                (key, model, text, prompt_tokens, completion_tokens),
            )

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM judgements").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
