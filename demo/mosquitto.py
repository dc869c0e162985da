"""Run a local Mosquitto broker from a generated config in a work folder (demo, tests, benchmarks).

    with MosquittoBroker(Path("var/broker"), users={"box-1": "secret"}, acl=ACL) as broker:
        print(broker.port)

The broker listens on loopback, on a free port unless one is given, keeps its
persistence file and log in the work folder, and survives :meth:`stop` /
:meth:`start` on the same port with its sessions and queued QoS 1 messages (SIGTERM
makes Mosquitto save them). ``users`` writes a hashed password file with
``mosquitto_passwd`` and turns anonymous access off; ``acl`` is the text of an ACL
file (see ``deploy/mosquitto/acl``).

When run as root, Mosquitto would switch to the ``mosquitto`` user and then fail to
write into a private work folder; the generated config keeps it running as the
user who started it.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from streetwatch.errors import ConfigError

INSTALL_HINT = "install the Debian/Ubuntu package 'mosquitto' (scripts/install.sh does it)"


def find_executable(name: str) -> str:
    """Path of a Mosquitto tool, from PATH or the Debian locations."""
    for candidate in (shutil.which(name), f"/usr/sbin/{name}", f"/usr/bin/{name}"):
        if candidate and Path(candidate).exists():
            return candidate
    raise ConfigError(f"{name} was not found; {INSTALL_HINT}")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def write_password_file(path: Path, users: Mapping[str, str]) -> None:
    """Write ``user:password`` lines and let ``mosquitto_passwd -U`` hash them in place."""
    for name in users:
        if not name or ":" in name or any(c.isspace() for c in name):
            raise ConfigError(f"MQTT username {name!r} must be non-empty without ':' or spaces")
    path.write_text("".join(f"{name}:{password}\n" for name, password in users.items()))
    path.chmod(0o600)
    result = subprocess.run(
        [find_executable("mosquitto_passwd"), "-U", str(path)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise ConfigError(f"mosquitto_passwd could not hash {path}: {result.stderr.strip() or result.stdout}")


class MosquittoBroker:
    def __init__(
        self,
        workdir: Path,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        users: Mapping[str, str] | None = None,
        acl: str | None = None,
        extra_conf: str = "",
    ) -> None:
        self.executable = find_executable("mosquitto")
        self.workdir = Path(workdir).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.port = port or free_port(host)
        self.conf = self.workdir / "mosquitto.conf"
        self.log = self.workdir / "mosquitto.log"
        self.conf.write_text(self._config(users, acl) + extra_conf)
        self.proc: subprocess.Popen[bytes] | None = None

    def _config(self, users: Mapping[str, str] | None, acl: str | None) -> str:
        lines = [
            f"listener {self.port} {self.host}",
            "persistence true",
            f"persistence_location {self.workdir}/",
            "max_queued_messages 0",  # no cap: tests and the demo must not lose queued messages
            "max_inflight_messages 0",
            f"log_dest file {self.log}",
            "log_type error",
            "log_type warning",
            "log_type notice",
        ]
        if os.geteuid() == 0:
            lines.append(f"user {getpass.getuser()}")
        if users is not None:
            password_file = self.workdir / "passwords"
            write_password_file(password_file, users)
            lines += ["allow_anonymous false", f"password_file {password_file}"]
        else:
            lines.append("allow_anonymous true")
        if acl is not None:
            acl_file = self.workdir / "acl"
            acl_file.write_text(acl)
            acl_file.chmod(0o600)
            lines.append(f"acl_file {acl_file}")
        return "\n".join(lines) + "\n"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 10.0) -> None:
        stderr_path = self.workdir / "mosquitto.stderr"
        with stderr_path.open("wb") as stderr:  # a file, not a pipe: a full pipe would stall the broker
            self.proc = subprocess.Popen(
                [self.executable, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=stderr
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = stderr_path.read_text(errors="replace").strip()
                raise ConfigError(
                    f"mosquitto exited with {self.proc.returncode}: {err or 'no output'}; see {self.log}"
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise ConfigError(
            f"mosquitto did not listen on {self.host}:{self.port} within {timeout} s; see {self.log}"
        )

    def stop(self) -> None:
        """SIGTERM (Mosquitto saves its persistence file on the way out), then wait."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> MosquittoBroker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
