"""Functions the isolation tests run inside the parse worker (referenced by dotted path)."""

from __future__ import annotations

import io
import os
import time


class DomainProblem(Exception):
    """An ordinary, picklable exception a parse function might raise."""


class Unpicklable(Exception):
    """An exception whose constructor signature defeats pickling."""

    def __init__(self, *, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def add(a: int, b: int) -> int:
    return a + b


def pid() -> int:
    return os.getpid()


def echo(value: object) -> object:
    return value


def fail(message: str) -> None:
    raise DomainProblem(message)


def fail_unpicklable() -> None:
    raise Unpicklable(reason="khó gửi")


def value_error() -> None:
    int("không phải số")


def abort() -> None:
    os.abort()


def sleep(seconds: float) -> str:
    time.sleep(seconds)
    return "woke"


def allocate(n_bytes: int) -> int:
    block = bytearray(n_bytes)
    return len(block)


def return_unpicklable() -> object:
    return lambda: None


def pandas_loaded() -> bool:
    import sys

    return "pandas" in sys.modules


def read_calamine(data: bytes) -> dict[str, tuple[int, int]]:
    """Read every sheet with pandas' calamine engine, with no guard in front."""
    import pandas as pd

    frames = pd.read_excel(io.BytesIO(data), engine="calamine", sheet_name=None, header=None)
    return {name: frame.shape for name, frame in frames.items()}


def killed_by_the_system() -> None:
    """Die the way the kernel's out-of-memory killer ends a process."""
    import signal

    os.kill(os.getpid(), signal.SIGKILL)
