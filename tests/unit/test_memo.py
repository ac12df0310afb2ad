"""The bounded memo keeps at most ``size`` entries and forgets the oldest first."""

from __future__ import annotations

from shared.memo import BoundedMemo


def test_the_oldest_entry_goes_first_and_a_replaced_one_evicts_nothing() -> None:
    memo: BoundedMemo[str, int] = BoundedMemo(2)
    memo.put("a", 1)
    memo.put("b", 2)
    memo.put("b", 3)  # already there: nothing forgotten
    assert (memo.get("a"), memo.get("b")) == (1, 3)
    memo.put("c", 4)  # full: "a", the oldest, goes
    assert (memo.get("a"), memo.get("b"), memo.get("c")) == (None, 3, 4)
