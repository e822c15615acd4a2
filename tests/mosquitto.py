"""A real Mosquitto broker for the tests: its own process, config and persistence in a temporary folder.

The config is the one the MQTT sink's README asks a site for, so the tests see what a site sees:

* ``max_queued_messages 0``: no limit on the per-client queue. Mosquitto's default of 1000 silently
  drops QoS 1 messages for a subscriber that falls behind; nothing may be dropped here.
* ``max_inflight_messages`` keeps its default (20): it only paces sending, the rest waits in the queue.
* ``persistence true`` with a short ``autosave_interval``: a persistent session's subscriptions and
  queued messages survive a broker restart (a clean stop saves them all).
* ``set_tcp_nodelay true``: acknowledgements leave at once instead of waiting on Nagle's algorithm.

``listener_options`` adds lines to the listener (TLS: ``cafile``, ``certfile``, ``keyfile``,
``require_certificate true``, ``use_identity_as_username true``) and to the security settings
(``allow_anonymous false``, ``password_file``: global in mosquitto 2.0 without ``per_listener_settings``,
which is all one listener needs). An ``allow_anonymous`` line among them replaces the default ``true``.

Only the process this helper started is ever signalled.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

INSTALL_HINT = "mosquitto is not installed: run `make test` (it installs mosquitto)"
PASSWD_HINT = "mosquitto_passwd is not installed: run `make test` (it installs mosquitto, which ships it)"


def mosquitto_binary() -> str | None:
    """The broker executable: on PATH, or where Debian puts it (/usr/sbin is not on every PATH)."""
    found = shutil.which("mosquitto")
    if found:
        return found
    for candidate in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Mosquitto:
    """``start()`` / ``stop()`` / ``restart()`` one broker on 127.0.0.1, keeping its port across restarts."""

    def __init__(
        self, folder: Path, binary: str, port: int | None = None, listener_options: Sequence[str] = ()
    ) -> None:
        self.folder = folder
        self.binary = binary
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.conf = folder / "mosquitto.conf"
        self.log_file = folder / "mosquitto.log"
        self.data = folder / "data"
        self.process: subprocess.Popen[bytes] | None = None
        self.data.mkdir(parents=True, exist_ok=True)
        options = [line.strip() for line in listener_options]
        anonymous = [] if any(line.split()[:1] == ["allow_anonymous"] for line in options) else ["allow_anonymous true"]
        self.conf.write_text(
            "\n".join(
                [
                    f"listener {self.port} {self.host}",
                    *options,
                    *anonymous,
                    "max_queued_messages 0",
                    "persistence true",
                    f"persistence_location {self.data}/",
                    "autosave_interval 1",
                    "set_tcp_nodelay true",
                    # Run as whoever runs the tests (as root mosquitto would switch to a user that
                    # cannot write the temporary folder).
                    f"user {pwd.getpwuid(os.getuid()).pw_name}",
                    f"log_dest file {self.log_file}",
                    "log_type error",
                    "log_type warning",
                    "log_type notice",
                    "log_type information",
                    "",
                ]
            )
        )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout_s: float = 10.0) -> None:
        """Start the broker and return once its port accepts connections."""
        if self.running:
            return
        self.process = subprocess.Popen(
            [self.binary, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + timeout_s
        while True:
            if self.process.poll() is not None:
                _, err = self.process.communicate()
                raise RuntimeError(
                    f"mosquitto exited with {self.process.returncode} on port {self.port}: "
                    f"{err.decode(errors='replace').strip()} {self.log_tail()}"
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    self.kill()
                    raise RuntimeError(f"mosquitto did not listen on {self.port} within {timeout_s} s") from None
                time.sleep(0.02)

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM (mosquitto saves its persistence file on the way out) and wait for the exit."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()

    def kill(self) -> None:
        """SIGKILL: a broker crash (messages since the last autosave are lost by the broker)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.kill()
        process.wait()
        if process.stderr is not None:
            process.stderr.close()

    def restart(self) -> None:
        """Stop cleanly and start again on the same port with the same persistence."""
        self.stop()
        self.start()

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start_mosquitto(folder: Path, listener_options: Sequence[str] = ()) -> Mosquitto:
    """A started broker; fails (never skips) when mosquitto is missing: CI installs it."""
    binary = mosquitto_binary()
    if binary is None:
        pytest.fail(INSTALL_HINT, pytrace=False)
    broker = Mosquitto(folder, binary, listener_options=listener_options)
    broker.start()
    return broker


def password_file(path: Path, users: dict[str, str]) -> Path:
    """A Mosquitto password file (hashed by ``mosquitto_passwd``) for ``users``; fails when the tool is missing."""
    tool = shutil.which("mosquitto_passwd") or next(
        (c for c in ("/usr/bin/mosquitto_passwd", "/usr/local/bin/mosquitto_passwd") if os.access(c, os.X_OK)), None
    )
    if tool is None:
        pytest.fail(PASSWD_HINT, pytrace=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    for user, secret in users.items():
        create = [] if path.exists() else ["-c"]
        done = subprocess.run([tool, "-b", *create, str(path), user, secret], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"mosquitto_passwd failed for {user}: {(done.stderr or done.stdout).strip()}")
    return path
