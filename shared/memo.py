"""A bounded in-process memo: a dict that forgets its oldest entry once full.

For values that never go stale under their key (content-addressed bytes, a result keyed by
its inputs), so the only thing to bound is memory; first in, first out is enough.
"""

from __future__ import annotations

from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class BoundedMemo(Generic[K, V]):
    def __init__(self, size: int) -> None:
        self.size = size
        self._items: dict[K, V] = {}

    def get(self, key: K) -> V | None:
        return self._items.get(key)

    def put(self, key: K, value: V) -> None:
        if key not in self._items and len(self._items) >= self.size:
            self._items.pop(next(iter(self._items)))
        self._items[key] = value
