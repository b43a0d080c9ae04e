"""Real proxy servers for the tests, each a child process on a free loopback port with its
configuration in a temporary folder, stopped by its PID: tinyproxy (HTTP CONNECT, Basic
credentials), stunnel in front of it (an https:// proxy), microsocks (SOCKS5, with or
without a username and password) and OpenSSH's dynamic forwarding, `ssh -D`, against an
sshd of its own (SOCKS4 and SOCKS4a; Dante, also packaged, refuses 4a requests).
scripts/install-peers.sh installs them."""

from __future__ import annotations

import contextlib
import getpass
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from tests.interop.peers import require

READY_TIMEOUT = 30.0
"""Seconds a proxy has to start listening (a bound: it normally takes milliseconds)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ProxyProcess:
    """A running proxy: `port` it listens on, `log()` what it wrote so far."""

    def __init__(self, args: list[str], port: int, log: Path) -> None:
        self.port = port
        self.log_path = log
        self._output = open(log.with_suffix(".out"), "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(args, stdout=self._output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def wait_listening(self) -> None:
        """Connect until the port accepts (each failed try also waits on the process, which
        fails at once if it exited)."""
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=READY_TIMEOUT).close()
                return
            except OSError:
                pass
            try:
                code = self.process.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                code = None
            if code is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"{self.process.args[0]} did not listen (exit {code}): {self.log()}")

    def log(self) -> str:
        """Everything the proxy logged: its log file and its output."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return text + self.log_path.with_suffix(".out").read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._output.close()


@contextmanager
def running(args: list[str], port: int, log: Path) -> Iterator[ProxyProcess]:
    proxy = ProxyProcess(args, port, log)
    try:
        proxy.wait_listening()
        yield proxy
    finally:
        proxy.stop()


def _program(name: str) -> str:
    path = shutil.which(name) or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None)
    require(path is not None, name)
    assert path is not None
    return path


@contextmanager
def tinyproxy(
    folder: Path, credentials: tuple[str, str] | None = None, port: int | None = None
) -> Iterator[ProxyProcess]:
    """An HTTP proxy that logs each CONNECT ("Request ...: CONNECT host:port")."""
    program = _program("tinyproxy")
    port = port or free_port()
    log = folder / "tinyproxy.log"
    config = [
        f"Port {port}",
        "Listen 127.0.0.1",
        "Timeout 60",
        "MaxClients 50",
        "LogLevel Connect",
        f'LogFile "{log}"',
        "Allow 127.0.0.1",
    ]
    if credentials is not None:
        config.append(f"BasicAuth {credentials[0]} {credentials[1]}")
    path = folder / "tinyproxy.conf"
    path.write_text("\n".join(config) + "\n")
    with running([program, "-d", "-c", str(path)], port, log) as proxy:
        yield proxy


@contextmanager
def https_proxy(folder: Path, cert_pem: Path, credentials: tuple[str, str] | None = None) -> Iterator[ProxyProcess]:
    """An https:// proxy: stunnel takes TLS on its port and passes the bytes to tinyproxy.
    `log()` is tinyproxy's."""
    program = _program("stunnel4") if shutil.which("stunnel4") else _program("stunnel")
    with ExitStack() as stack:
        inner = stack.enter_context(tinyproxy(folder, credentials))
        port = free_port()
        config = folder / "stunnel.conf"
        config.write_text(
            "foreground = yes\n"
            "pid =\n"
            "debug = notice\n"
            "[https-proxy]\n"
            f"accept = 127.0.0.1:{port}\n"
            f"connect = 127.0.0.1:{inner.port}\n"
            f"cert = {cert_pem}\n"
        )
        stack.enter_context(running([program, str(config)], port, folder / "stunnel.log"))
        inner.port = port
        yield inner


@contextmanager
def microsocks(folder: Path, credentials: tuple[str, str] | None = None) -> Iterator[ProxyProcess]:
    """A SOCKS5 proxy that logs each tunnel ("connected to host:port", the host as the
    client sent it: a name for socks5h, an address for socks5)."""
    program = _program("microsocks")
    port = free_port()
    args = [program, "-i", "127.0.0.1", "-p", str(port)]
    if credentials is not None:
        args += ["-u", credentials[0], "-P", credentials[1]]
    with running(args, port, folder / "microsocks.log") as proxy:
        yield proxy


@contextmanager
def ssh_socks(folder: Path) -> Iterator[ProxyProcess]:
    """A SOCKS4/4a proxy: `ssh -D` logged in to an sshd of its own by a key made here; the
    sshd logs each tunnel ("target HOST port PORT", the host as the proxy got it)."""
    sshd = _program("sshd")
    ssh = _program("ssh")
    keygen = _program("ssh-keygen")
    for key in ("host", "user"):
        subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(folder / key)], check=True)
    (folder / "authorized_keys").write_bytes((folder / "user.pub").read_bytes())
    sshd_port = free_port()
    log = folder / "sshd.log"
    (folder / "sshd_config").write_text(
        f"Port {sshd_port}\nListenAddress 127.0.0.1\nHostKey {folder / 'host'}\n"
        f"AuthorizedKeysFile {folder / 'authorized_keys'}\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n"
        "PidFile none\nAllowTcpForwarding yes\nLogLevel DEBUG1\n"
    )
    with contextlib.suppress(OSError):
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation folder
    with ExitStack() as stack:
        server = stack.enter_context(
            running([sshd, "-D", "-e", "-f", str(folder / "sshd_config"), "-E", str(log)], sshd_port, log)
        )
        port = free_port()
        client = [
            ssh, "-N", "-D", f"127.0.0.1:{port}", "-i", str(folder / "user"), "-p", str(sshd_port),
            "-o", "StrictHostKeyChecking=no", "-o", f"UserKnownHostsFile={folder / 'known_hosts'}",
            "-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes", f"{getpass.getuser()}@127.0.0.1",
        ]  # fmt: skip
        stack.enter_context(running(client, port, folder / "ssh.log"))
        server.port = port
        yield server
