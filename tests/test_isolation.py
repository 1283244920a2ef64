"""The parse worker: results and errors come back, crashes and overruns do not reach the caller."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import pytest

import badfiles
from tracker import isolation
from tracker.isolation import (
    RemoteError,
    Worker,
    WorkerCrashed,
    WorkerError,
    WorkerMemoryError,
    WorkerTimeout,
)

T = "isolation_targets:"


@pytest.fixture(scope="module")
def worker() -> Iterator[Worker]:
    w = Worker(memory_limit=1536 * 1024 * 1024)
    w.start()
    yield w
    w.shutdown()


def test_call_returns_value_computed_in_another_process(worker: Worker) -> None:
    assert worker.run(T + "add", 2, 3, timeout=10) == 5
    child = worker.run(T + "pid", timeout=10)
    assert child != os.getpid()
    assert child == worker.pid


def test_pandas_is_imported_once_at_start(worker: Worker) -> None:
    assert worker.run(T + "pandas_loaded", timeout=10) is True


def test_warm_call_costs_a_pipe_round_trip(worker: Worker) -> None:
    worker.run(T + "add", 1, 1, timeout=10)
    starts = worker.starts
    began = time.perf_counter()
    for _ in range(50):
        worker.run(T + "add", 1, 1, timeout=10)
    per_call = (time.perf_counter() - began) / 50
    assert worker.starts == starts  # no new interpreter per call
    assert per_call < 0.05


def test_bytes_and_vietnamese_round_trip(worker: Worker) -> None:
    payload = {"tên": "Huyện Lục Nam", "dữ liệu": bytes(range(256)) * 100}
    assert worker.run(T + "echo", payload, timeout=10) == payload


def test_function_exception_comes_back_with_type_and_message(worker: Worker) -> None:
    from isolation_targets import DomainProblem

    with pytest.raises(DomainProblem, match="Ô E7 phải là số nguyên không âm"):
        worker.run(T + "fail", "Ô E7 phải là số nguyên không âm", timeout=10)
    with pytest.raises(ValueError, match="không phải số"):
        worker.run(T + "value_error", timeout=10)


def test_child_traceback_travels_as_a_note(worker: Worker) -> None:
    with pytest.raises(ValueError) as info:
        worker.run(T + "value_error", timeout=10)
    notes = getattr(info.value, "__notes__", [])
    assert any("isolation_targets.py" in note for note in notes)


def test_unpicklable_exception_becomes_remote_error(worker: Worker) -> None:
    with pytest.raises(RemoteError) as info:
        worker.run(T + "fail_unpicklable", timeout=10)
    assert info.value.type_name == "Unpicklable"
    assert "khó gửi" in str(info.value)
    assert worker.run(T + "add", 1, 2, timeout=10) == 3


def test_unpicklable_result_becomes_remote_error(worker: Worker) -> None:
    with pytest.raises(RemoteError, match="not picklable"):
        worker.run(T + "return_unpicklable", timeout=10)
    assert worker.run(T + "add", 1, 2, timeout=10) == 3


def test_unknown_function_is_an_error_not_a_crash(worker: Worker) -> None:
    with pytest.raises(AttributeError):
        worker.run(T + "no_such_function", timeout=10)
    with pytest.raises(ModuleNotFoundError):
        worker.run("no_such_module:f", timeout=10)
    assert worker.run(T + "add", 1, 2, timeout=10) == 3


def test_abort_gives_worker_crashed_and_next_call_works(worker: Worker) -> None:
    before = worker.pid
    with pytest.raises(WorkerCrashed, match="SIGABRT") as info:
        worker.run(T + "abort", timeout=10)
    assert info.value.code == "worker_crashed"
    assert "Tệp" in info.value.message
    assert worker.run(T + "add", 4, 5, timeout=60) == 9
    assert worker.pid != before


def test_a_child_killed_by_the_system_gets_its_own_honest_message(worker: Worker) -> None:
    from tracker.isolation import WorkerKilled

    with pytest.raises(WorkerKilled, match="SIGKILL") as info:
        worker.run(T + "killed_by_the_system", timeout=10)
    assert info.value.code == "worker_killed"
    assert "hệ điều hành" in info.value.message and "không phải lỗi của tệp" in info.value.message
    assert "bộ nhớ để đọc" not in info.value.message  # not the file's "needs too much memory"
    assert worker.run(T + "add", 1, 1, timeout=60) == 2


def test_timeout_kills_child_and_next_call_works(worker: Worker) -> None:
    before = worker.pid
    began = time.perf_counter()
    with pytest.raises(WorkerTimeout):
        worker.run(T + "sleep", 30, timeout=0.5)
    assert time.perf_counter() - began < 5
    assert before is not None
    with pytest.raises(ProcessLookupError):
        os.kill(before, 0)  # the overrunning child is gone, not left running
    assert worker.run(T + "sleep", 0, timeout=60) == "woke"


def test_allocation_past_memory_limit_is_refused_not_fatal(worker: Worker) -> None:
    with pytest.raises(WorkerMemoryError) as info:
        worker.run(T + "allocate", 4 * 1024**3, timeout=30)
    assert isinstance(info.value, WorkerError)
    assert info.value.message.startswith("Tệp cần quá nhiều bộ nhớ")
    assert worker.run(T + "allocate", 1024, timeout=60) == 1024


def test_calamine_on_far_cell_without_guard_does_not_take_down_parent(worker: Worker) -> None:
    data = badfiles.far_cell_xlsx()
    with pytest.raises(WorkerError):
        worker.run(T + "read_calamine", data, timeout=60)
    # The parent is alive (we are running) and the worker serves real parses again.
    shapes = worker.run(T + "read_calamine", badfiles.good_xlsx(), timeout=60)
    assert shapes == {"Biểu 01": (31, 6), "Biểu 02": (15, 3)}


def test_calls_from_threads_are_serialised(worker: Worker) -> None:
    results: list[int] = []
    errors: list[BaseException] = []

    def call(i: int) -> None:
        try:
            results.append(worker.run(T + "add", i, i, timeout=30))
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(results) == [2 * i for i in range(8)]


def test_shutdown_stops_child_and_run_restarts_lazily() -> None:
    w = Worker(preload=())
    assert w.run(T + "add", 1, 1, timeout=30) == 2
    pid = w.pid
    assert pid is not None
    w.shutdown()
    assert w.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert w.run(T + "add", 2, 2, timeout=30) == 4
    assert w.starts == 2
    w.shutdown()


def test_default_worker_is_per_process_and_replaced_after_fork() -> None:
    first = isolation.default_worker()
    assert isolation.default_worker() is first
    assert isolation.run(T + "add", 1, 2, timeout=60) == 3
    parent_child = first.pid
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the forked process
        ok = 0
        try:
            mine = isolation.default_worker()
            ok = int(mine is not first and mine.pid is None)
        finally:
            os.write(write_fd, bytes([ok]))
            os._exit(0)
    os.close(write_fd)
    assert os.read(read_fd, 1) == b"\x01"
    os.close(read_fd)
    os.waitpid(pid, 0)
    # The forked process must not have touched the parent's child.
    assert first.pid == parent_child
    assert isolation.run(T + "add", 2, 2, timeout=60) == 4
    isolation.shutdown()
    assert parent_child is not None
    with pytest.raises(ProcessLookupError):
        os.kill(parent_child, 0)
