"""Remember recently finished groups (bounded), so a straggler cannot open its group a second time."""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

V = TypeVar("V")


class FinishedGroups(Generic[V]):
    def __init__(self, capacity: int = 100_000):
        self.capacity = capacity
        self._items: OrderedDict[str, V] = OrderedDict()

    def add(self, uid: str, value: V) -> None:
        self._items[uid] = value
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def get(self, uid: str) -> V | None:
        return self._items.get(uid)

    def __contains__(self, uid: str) -> bool:
        return uid in self._items
