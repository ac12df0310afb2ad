"""Keeping the embedded stack's processes alive: restart what died, with backoff, never blocking.

Each supervised process says whether it is alive and can be started without waiting for it to
be ready. ``Supervisor.tick`` is called every fraction of a second: a process found dead gets
a restart time (at once if it had run for a while, else after 1, 2, 4 … 30 s of backoff), and
processes whose time has come are started. Nothing sleeps inside a tick, so a process in a
crash loop never delays another's restart.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

STABLE_AFTER_S = 10.0
"""A process that ran this long before exiting is restarted at once."""
MAX_BACKOFF_S = 30.0


class Supervised(Protocol):
    name: str

    def alive(self) -> bool: ...

    def start(self) -> None:
        """Launch the process and return at once."""
        ...

    def describe_exit(self) -> str: ...


@dataclass
class _State:
    started_at: float
    quick_exits: int = 0
    restart_at: float | None = None
    restarts: int = 0


class Supervisor:
    def __init__(
        self,
        processes: list[Supervised],
        say: Callable[[str], None] = print,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.processes = processes
        self.say = say
        self.clock = clock
        self._state: dict[str, _State] = {}

    def start_all(self) -> None:
        """Start every process that is not running yet (servers may have been started first)."""
        for process in self.processes:
            if process.alive():
                self._state[process.name] = _State(started_at=self.clock())
            else:
                self._start(process)

    def restarts(self, name: str) -> int:
        return self._state[name].restarts

    def tick(self) -> None:
        """Notice exits and start whatever is due; returns without waiting for anything."""
        now = self.clock()
        for process in self.processes:
            state = self._state[process.name]
            if state.restart_at is None:
                if process.alive():
                    continue
                state.restart_at = now + self._backoff(state, now)
                delay = state.restart_at - now
                self.say(f"{process.name} {process.describe_exit()}; restarting in {delay:g}s")
            if now >= state.restart_at:
                state.restarts += 1
                self._start(process)

    def _backoff(self, state: _State, now: float) -> float:
        if now - state.started_at >= STABLE_AFTER_S:
            state.quick_exits = 0
            return 0.0
        state.quick_exits += 1
        return min(2.0 ** (state.quick_exits - 1), MAX_BACKOFF_S)

    def _start(self, process: Supervised) -> None:
        state = self._state.setdefault(process.name, _State(started_at=self.clock()))
        state.started_at = self.clock()
        state.restart_at = None
        try:
            process.start()
        except Exception as exc:  # counts as a quick exit: retried with backoff
            self.say(f"{process.name} could not start: {exc}")
