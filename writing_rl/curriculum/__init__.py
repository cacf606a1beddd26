"""Dynamic reference scheduling (Writing-RL): per-prompt rungs on a ladder of references, kept in a
human-editable JSON index file with an append-only promotion history."""
