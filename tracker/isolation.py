"""Run parse functions in a warm child process with memory and time limits.

calamine aborts the whole interpreter on some workbooks and openpyxl can climb past 4 GB, so the
web worker never parses an upload itself. A ``Worker`` keeps one child process, imports pandas
there once,
and sends it ``(dotted function path, args)`` over a pipe. A call costs a pipe round trip; the
interpreter start and the pandas import are paid once per child. When the child aborts, is
killed for memory, or overruns its time, the caller gets ``WorkerCrashed`` / ``WorkerMemoryError``
/ ``WorkerTimeout`` and the next call starts a fresh child.

The child is a fresh interpreter started with ``subprocess`` (what multiprocessing's ``spawn``
does underneath) rather than ``multiprocessing.Process``: ``spawn`` re-runs the parent's
``__main__`` script in the child, which breaks for any entry point without a ``__main__`` guard
and costs its imports. A fresh interpreter inherits no database connections, locks or threads.
"""

from __future__ import annotations

import atexit
import importlib
import os
import pickle
import signal
import subprocess
import sys
import threading
import traceback
import weakref
from collections.abc import Callable
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from typing import Any

DEFAULT_MEMORY_LIMIT = 1536 * 1024 * 1024
DEFAULT_PRELOAD = ("pandas", "python_calamine")


class WorkerError(Exception):
    """A call the worker could not complete; ``code`` is stable, ``message`` Vietnamese."""

    code = "worker_error"
    default_message = "Hệ thống không đọc được tệp này. Hãy mở tệp bằng Excel, lưu lại rồi tải lên lần nữa."

    def __init__(self, detail: str = "", message: str | None = None) -> None:
        self.detail = detail
        self.message = message or self.default_message
        super().__init__(f"{self.code}: {detail}" if detail else self.code)

    def __reduce__(self) -> tuple[type[WorkerError], tuple[str, str]]:
        return (type(self), (self.detail, self.message))


class WorkerCrashed(WorkerError):
    """The child process died during the call (abort, signal, or killed by the kernel)."""

    code = "worker_crashed"
    default_message = (
        "Tệp có cấu trúc bất thường khiến chương trình đọc bảng tính dừng đột ngột. Hãy dùng biểu "
        "mẫu tải về từ hệ thống, lưu lại dưới dạng .xlsx rồi tải lên lần nữa."
    )


class WorkerKilled(WorkerCrashed):
    """The operating system killed the child (SIGKILL: the kernel's out-of-memory killer, an operator).

    Not the file's fault as far as anyone can tell: the machine ran short, not the child's own limit
    (that one raises MemoryError inside the child and comes back as WorkerMemoryError).
    """

    code = "worker_killed"
    default_message = (
        "Chương trình đọc tệp bị hệ điều hành dừng giữa chừng (máy chủ có thể đang thiếu bộ nhớ hoặc đang "
        "khởi động lại). Đây không phải lỗi của tệp. Vui lòng tải lên lại sau ít phút."
    )


class WorkerTimeout(WorkerError):
    """The call ran past its time limit; the child was killed."""

    code = "worker_timeout"
    default_message = (
        "Đọc tệp mất quá nhiều thời gian nên đã dừng. Hãy xoá các trang tính, ô thừa ngoài biểu "
        "mẫu rồi tải lên lần nữa."
    )


class WorkerMemoryError(WorkerError):
    """The call needed more memory than the child is allowed."""

    code = "worker_memory"
    default_message = (
        "Tệp cần quá nhiều bộ nhớ để đọc. Hãy xoá các trang tính, ô thừa ngoài biểu mẫu rồi tải "
        "lên lần nữa."
    )


class RemoteError(WorkerError):
    """An exception raised in the child that could not be sent back as itself."""

    code = "remote_error"

    def __init__(self, detail: str = "", message: str | None = None,
                 type_name: str = "", remote_traceback: str = "") -> None:
        super().__init__(detail, message)
        self.type_name = type_name
        self.remote_traceback = remote_traceback

    def __reduce__(self) -> tuple[type[RemoteError], tuple[str, str, str, str]]:  # type: ignore[override]
        return (type(self), (self.detail, self.message, self.type_name, self.remote_traceback))


# ---------------------------------------------------------------- child side


def _resolve(func_path: str) -> Callable[..., Any]:
    module_name, _, attr = func_path.partition(":")
    if not attr:
        module_name, _, attr = func_path.rpartition(".")
    target: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        target = getattr(target, part)
    if not callable(target):
        raise TypeError(f"{func_path} is not callable")
    return target  # type: ignore[no-any-return]


def _portable(exc: BaseException) -> BaseException:
    """Return ``exc`` if it survives pickling, else a RemoteError describing it."""
    tb = "".join(traceback.format_exception(exc))
    exc.__traceback__ = None  # frames do not pickle; the text travels as a note
    try:
        exc.add_note("Traceback in the parse worker:\n" + tb)
        if type(pickle.loads(pickle.dumps(exc))) is type(exc):
            return exc
    except Exception:
        pass
    return RemoteError(f"{type(exc).__qualname__}: {exc}", type_name=type(exc).__qualname__,
                       remote_traceback=tb)


_BOOTSTRAP = (
    "import sys\n"
    "from multiprocessing.connection import Connection\n"
    "conn = Connection(int(sys.argv[1]))\n"
    "sys.path[:] = conn.recv()\n"
    "from {module} import _child_main\n"
    "_child_main(conn, *conn.recv())\n"
)


def _child_main(conn: Connection, memory_limit: int | None, preload: tuple[str, ...]) -> None:
    """Child loop: limit itself, warm its imports, then serve calls until told to stop."""
    import resource

    # BLAS/OpenMP thread pools reserve address space per thread; one thread keeps RLIMIT_AS honest.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    # An abort would otherwise leave a core file the size of the heap.
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if memory_limit:
        resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
    # Ctrl-C in a dev server reaches the whole process group; the parent decides when we stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        for name in preload:
            importlib.import_module(name)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, then exit
        conn.send(("err", _portable(exc)))
        return
    conn.send(("ready", os.getpid()))
    cache: dict[str, Callable[..., Any]] = {}
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        func_path, args = message
        try:
            func = cache.get(func_path) or cache.setdefault(func_path, _resolve(func_path))
            reply: tuple[str, Any] = ("ok", func(*args))
        except MemoryError:
            reply = ("memory", None)
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to the caller
            reply = ("err", _portable(exc))
        try:
            conn.send(reply)
        except MemoryError:
            conn.send(("memory", None))
        except Exception as exc:  # an unpicklable result
            conn.send(("err", RemoteError(f"result not picklable: {exc}",
                                          type_name=type(exc).__qualname__)))
        if reply[0] == "memory":
            # The heap may be fragmented or half-built; a fresh child is cheaper than doubt.
            return


# ---------------------------------------------------------------- parent side


class Worker:
    """One warm child process serving calls one at a time (calls from threads are serialised)."""

    def __init__(self, memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
                 preload: tuple[str, ...] = DEFAULT_PRELOAD, start_timeout: float = 60.0) -> None:
        self.memory_limit = memory_limit
        self.preload = preload
        self.start_timeout = start_timeout
        self._lock = threading.Lock()
        self._owner = os.getpid()
        self._proc: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self.starts = 0
        # Collected without shutdown(): still reap the child, or it lingers as a zombie.
        self._finalizer = weakref.finalize(self, _reap_quietly, self._state)

    @property
    def pid(self) -> int | None:
        """The child's process id, or None when no child is running."""
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        """Start the child now (normally it starts on the first call). Raises WorkerCrashed."""
        with self._lock:
            self._adopt_after_fork()
            self._ensure_started()

    def run(self, func_path: str, *args: Any, timeout: float) -> Any:
        """Return ``func(*args)`` computed in the child; ``func_path`` is "pkg.module:function".

        Re-raises the function's own exception when it pickles (with the child's traceback as a
        note), else a RemoteError. Raises WorkerTimeout after ``timeout`` seconds (the child is
        killed), WorkerMemoryError when the child ran out of its memory limit, WorkerCrashed when
        it died; in each case the next call starts a fresh child. Startup is not counted in
        ``timeout``; it has its own ``start_timeout``.
        """
        with self._lock:
            self._adopt_after_fork()
            self._ensure_started()
            assert self._conn is not None
            try:
                self._conn.send((func_path, args))
            except (OSError, EOFError) as exc:
                raise self._crashed(f"send failed: {exc}") from None
            if not self._conn.poll(timeout):
                self._kill()
                raise WorkerTimeout(f"{func_path} ran past {timeout:g} s")
            try:
                status, payload = self._conn.recv()
            except (EOFError, OSError):
                raise self._crashed(func_path) from None
            if status == "ok":
                return payload
            if status == "memory":
                self._kill(grace=2.0)
                raise WorkerMemoryError(f"{func_path} exceeded {self.memory_limit} bytes")
            raise payload

    def shutdown(self, timeout: float = 2.0) -> None:
        """Stop the child: ask it to exit, and kill it if it has not after ``timeout`` seconds."""
        with self._lock:
            if self._owner != os.getpid():
                self._forget()
                return
            if self._conn is not None:
                try:
                    self._conn.send(None)
                except (OSError, EOFError):
                    pass
            self._kill(grace=timeout)

    # ------------------------------------------------------------ internals

    @property
    def _state(self) -> dict[str, Any]:
        # Shared with the finalizer, which must not hold a reference to self.
        if not hasattr(self, "_state_box"):
            self._state_box: dict[str, Any] = {}
        return self._state_box

    def _adopt_after_fork(self) -> None:
        # After os.fork (gunicorn preloading) the child process belongs to our parent: we can
        # neither wait for it nor share its pipe, so forget it and start our own.
        if self._owner != os.getpid():
            self._forget()
            self._owner = os.getpid()

    def _forget(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except OSError:
                pass
        self._proc = self._conn = None
        self._state.clear()

    def _ensure_started(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        self._kill()
        parent_conn, child_conn = Pipe(duplex=True)
        fd = child_conn.fileno()
        code = _BOOTSTRAP.format(module=__name__)
        proc = subprocess.Popen(
            [sys.executable, "-c", code, str(fd)],
            pass_fds=(fd,), stdin=subprocess.DEVNULL, close_fds=True,
        )
        # Only the child may hold its end, or a dead child would never read as EOF here.
        child_conn.close()
        self._proc, self._conn = proc, parent_conn
        self._state.update(proc=proc, conn=parent_conn, owner=os.getpid())
        self.starts += 1
        try:
            parent_conn.send(list(sys.path))
            parent_conn.send((self.memory_limit, self.preload))
        except (OSError, EOFError):
            raise self._crashed("child died while starting") from None
        if not parent_conn.poll(self.start_timeout):
            self._kill()
            raise WorkerCrashed(f"child did not start within {self.start_timeout:g} s")
        try:
            status, payload = parent_conn.recv()
        except (EOFError, OSError):
            raise self._crashed("child died while starting") from None
        if status != "ready":
            self._kill()
            raise WorkerCrashed(f"child failed to start: {payload!r}")

    def _crashed(self, what: str) -> WorkerError:
        proc = self._proc
        code = None
        if proc is not None:
            try:
                code = proc.wait(2.0)
            except subprocess.TimeoutExpired:
                code = None
        self._kill()
        if code is not None and code < 0:
            number = -code
            name = signal.Signals(number).name if number in signal.valid_signals() else str(number)
            if number == signal.SIGKILL:
                # The child's own memory limit shows up as MemoryError, not a signal: SIGKILL comes from
                # outside (the kernel's out-of-memory killer, an operator), so say so honestly.
                return WorkerKilled(f"{what}: killed by {name}")
            return WorkerCrashed(f"{what}: killed by {name}")
        return WorkerCrashed(f"{what}: exit code {code}")

    def _kill(self, grace: float = 0.0) -> None:
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        self._state.clear()
        _stop(proc, conn, grace)


def _stop(proc: subprocess.Popen[bytes] | None, conn: Connection | None, grace: float) -> None:
    if proc is not None and grace > 0:
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    if conn is not None:
        try:
            conn.close()
        except OSError:
            pass
    if proc is not None:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def _reap_quietly(state: dict[str, Any]) -> None:
    # A forked copy of this Worker must never kill the process its parent started.
    if state.get("proc") is not None and state.get("owner") == os.getpid():
        _stop(state.get("proc"), state.get("conn"), 0.0)


# ---------------------------------------------------------------- per-process default


_default: Worker | None = None
_default_lock = threading.Lock()


def default_worker(memory_limit: int | None = DEFAULT_MEMORY_LIMIT) -> Worker:
    """Return this process's shared Worker, creating it on first use (and again after fork).

    ``memory_limit`` applies when the worker is created; a changed limit replaces the worker.
    """
    global _default
    with _default_lock:
        if _default is None or _default._owner != os.getpid() or _default.memory_limit != memory_limit:
            if _default is not None and _default._owner == os.getpid():
                _default.shutdown()
            _default = Worker(memory_limit=memory_limit)
        return _default


def run(func_path: str, *args: Any, timeout: float, memory_limit: int | None = DEFAULT_MEMORY_LIMIT) -> Any:
    """Call ``func_path`` with ``args`` on the default worker; see ``Worker.run``."""
    return default_worker(memory_limit).run(func_path, *args, timeout=timeout)


def shutdown() -> None:
    """Stop the default worker's child, if this process started one."""
    global _default
    worker = _default
    _default = None
    if worker is not None and worker._owner == os.getpid():
        worker.shutdown()


def _after_fork_in_child() -> None:
    global _default, _default_lock
    # The lock may have been held by another thread at fork time; the worker belongs to the parent.
    _default_lock = threading.Lock()
    if _default is not None:
        # Drop the parent's child handle without touching the parent's process.
        _default._state.clear()
        _default._proc = _default._conn = None
        _default._lock = threading.Lock()
    _default = None


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(shutdown)

__all__ = [
    "RemoteError", "Worker", "WorkerCrashed", "WorkerError", "WorkerKilled", "WorkerMemoryError",
    "WorkerTimeout", "default_worker", "run", "shutdown",
]
