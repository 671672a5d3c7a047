"""The sandbox's child processes: free ports, start each in its own process group, wait for health, stop.

Every child runs in a new session (its own process group), so stopping it also stops what it started
(`mlflow server` runs uvicorn under it), and a Ctrl+C in the terminal reaches only the sandbox, which
then stops its children in order.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess  # nosec B404: starts the sandbox's own servers and workers
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path

LOCALHOST = "127.0.0.1"


class SandboxError(RuntimeError):
    """The sandbox cannot start or run; the message says what to do."""


def free_port(host: str = LOCALHOST) -> int:
    """A port nobody listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def check_port_free(port: int, *, what: str, option: str, host: str = LOCALHOST) -> None:
    """Raise `SandboxError` when `port` is taken, naming the option that chose it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as error:
            raise SandboxError(
                f"port {port} on {host} is already in use, so the {what} cannot listen on it ({error.strerror}). "
                f"Stop whatever listens there, pass another port with {option}, or leave {option} out to pick a "
                "free port."
            ) from None


class ChildProcess:
    """One child process with its output in a log file."""

    def __init__(self, name: str, popen: subprocess.Popen, log_path: Path) -> None:
        self.name = name
        self.popen = popen
        self.log_path = log_path

    @classmethod
    def start(
        cls,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        log_path: Path,
        cwd: Path | None = None,
    ) -> ChildProcess:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            popen = subprocess.Popen(  # nosec B603: argv is a list built here, no shell
                list(argv),
                env=dict(env),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return cls(name, popen, log_path)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, signum: int = signal.SIGTERM) -> None:
        """Signal the child's whole process group (it leads its own session)."""
        if not self.alive():
            return
        try:
            os.killpg(self.popen.pid, signum)
        except ProcessLookupError:
            pass

    def wait(self, timeout: float) -> bool:
        try:
            self.popen.wait(timeout=max(timeout, 0.0))
        except subprocess.TimeoutExpired:
            return False
        return True

    def stop(self, timeout: float = 5.0) -> None:
        stop_all([self], timeout=timeout)

    def log_tail(self, lines: int = 15) -> str:
        return tail(self.log_path, lines)

    def exited_message(self) -> str:
        return (
            f"{self.name} exited with code {self.popen.returncode}. Last lines of {self.log_path}:\n{self.log_tail()}"
        )

    def exit_description(self) -> str:
        """How the child ended, in words: `killed by SIGKILL`, `exited with code 3` (or `running`)."""
        return describe_exit(self.popen.poll())


def describe_exit(returncode: int | None) -> str:
    """`Popen.returncode` in words (a negative code is the signal that ended the process)."""
    if returncode is None:
        return "running"
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with code {returncode}"


class CrashLoopGuard:
    """Counts the deaths of one route's workers that happen before they handled a batch (at start).

    A worker that dies after it took a batch is what Lambda lives with (the sandbox replaces it, like a new
    execution environment, and the batch comes back after its visibility timeout). One that dies `deaths` times
    at start within `window_seconds` is a misconfigured function (a handler that cannot start): replacing it
    again would only spin, so `record` answers True and the sandbox stops with the reason.
    """

    def __init__(self, deaths: int, window_seconds: float) -> None:
        self.deaths = deaths
        self.window_seconds = window_seconds
        self._at_start: dict[str, deque[float]] = {}

    def record(self, route: str, *, at_start: bool, now: float | None = None) -> bool:
        """Note one death of a `route` worker; True when it completes a crash loop."""
        if not at_start:
            return False
        now = time.monotonic() if now is None else now
        deaths = self._at_start.setdefault(route, deque())
        deaths.append(now)
        while deaths and now - deaths[0] > self.window_seconds:
            deaths.popleft()
        return len(deaths) >= self.deaths


def stop_all(children: Sequence[ChildProcess], *, timeout: float = 5.0) -> None:
    """SIGTERM every child's process group, wait up to `timeout`, then SIGKILL what is left."""
    for child in children:
        child.signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for child in children:
        if not child.wait(deadline - time.monotonic()):
            child.signal(signal.SIGKILL)
            child.wait(2.0)
    for child in children:
        # The leader is gone; make sure nothing it started lingers in its group.
        try:
            os.killpg(child.popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def wait_until_healthy(url: str, *, child: ChildProcess, deadline: float, what: str) -> None:
    """Poll `url` until it answers 200; fail fast when the child exits, or at the deadline."""
    while True:
        if not child.alive():
            raise SandboxError(f"the {what} did not start: {child.exited_message()}")
        try:
            with urllib.request.urlopen(url, timeout=1.0) as response:  # nosec B310: url is always http://127.0.0.1:<port>
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        if time.monotonic() > deadline:
            raise SandboxError(
                f"the {what} did not answer {url} in time. Last lines of {child.log_path}:\n{child.log_tail()}"
            )
        time.sleep(0.1)


def tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no output)"
    return "\n".join(text.splitlines()[-lines:]) or "(no output)"
