"""The embedded supervisor's restart schedule, on a fake clock (no processes)."""

from __future__ import annotations

from shared.embedded.supervisor import MAX_BACKOFF_S, STABLE_AFTER_S, Supervisor


class FakeProcess:
    def __init__(self, name: str) -> None:
        self.name = name
        self.running = False
        self.starts = 0

    def alive(self) -> bool:
        return self.running

    def start(self) -> None:
        self.running = True
        self.starts += 1

    def describe_exit(self) -> str:
        return "exited"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def supervised(*names: str) -> tuple[Supervisor, dict[str, FakeProcess], Clock, list[str]]:
    processes = {n: FakeProcess(n) for n in names}
    clock = Clock()
    said: list[str] = []
    supervisor = Supervisor(list(processes.values()), say=said.append, clock=clock)
    supervisor.start_all()
    return supervisor, processes, clock, said


def test_a_process_that_ran_for_a_while_is_restarted_at_once() -> None:
    supervisor, p, clock, said = supervised("relay")
    clock.now = STABLE_AFTER_S + 1
    p["relay"].running = False
    supervisor.tick()
    assert p["relay"].starts == 2 and said == ["relay exited; restarting in 0s"]


def test_quick_exits_back_off_up_to_the_cap() -> None:
    supervisor, p, clock, said = supervised("solver")
    delays = []
    for _ in range(8):
        p["solver"].running = False
        supervisor.tick()
        delays.append(float(said[-1].rsplit(" ", 1)[1].rstrip("s")))
        clock.now += delays[-1]
        supervisor.tick()
        assert p["solver"].running
    assert delays == [1, 2, 4, 8, 16, MAX_BACKOFF_S, MAX_BACKOFF_S, MAX_BACKOFF_S]


def test_a_crash_loop_does_not_delay_another_restart() -> None:
    supervisor, p, clock, _ = supervised("solver", "ui")
    for _ in range(5):  # the solver keeps dying: 16 s of backoff now
        p["solver"].running = False
        supervisor.tick()
        clock.now += 0.5
        while not p["solver"].running:
            clock.now += 0.2
            supervisor.tick()
    p["solver"].running = False  # quickly again, and the ui (up for 30 s) once
    p["ui"].running = False
    supervisor.tick()
    assert p["ui"].running and not p["solver"].running
    clock.now += 0.2
    supervisor.tick()
    assert not p["solver"].running


def test_servers_started_before_the_supervisor_are_adopted_not_started_again() -> None:
    postgres = FakeProcess("postgres")
    postgres.start()
    supervisor = Supervisor([postgres], say=lambda _: None, clock=Clock())
    supervisor.start_all()
    supervisor.tick()
    assert postgres.starts == 1
