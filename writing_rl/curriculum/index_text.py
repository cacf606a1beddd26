"""The index file's text kept line by line, so that writing a million prompts costs one join.

Keys never change during training (ids of the data stay in the index), so they are sorted once; a
promotion re-renders one line.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from writing_rl.curriculum.index_file import entry_line

CHUNK_LINES = 65_536


class IndexText:
    def __init__(self, state: Mapping[str, int]):
        self.keys = sorted(state)
        self.values = {key: int(state[key]) for key in self.keys}
        self._row = {key: row for row, key in enumerate(self.keys)}
        self._lines = [entry_line(key, self.values[key]) for key in self.keys]

    def update(self, changes: Mapping[str, int]) -> None:
        for key, rung in changes.items():
            self.values[key] = rung
            self._lines[self._row[key]] = entry_line(key, rung)

    def chunks(self) -> Iterator[str]:
        """The text (the same as `render_index(self.values)`) in pieces of `CHUNK_LINES` entries."""
        if not self._lines:
            yield "{}\n"
            return
        yield "{\n"
        for start in range(0, len(self._lines), CHUNK_LINES):
            end = start + CHUNK_LINES
            yield ",\n".join(self._lines[start:end]) + (",\n" if end < len(self._lines) else "\n}\n")
