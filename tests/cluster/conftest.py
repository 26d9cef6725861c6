"""Real ``dask scheduler`` and ``dask worker`` processes on 127.0.0.1, started by hand.

Each runs in its own temporary folder, never the repository, as on a cluster where the
workers do not share the driver's working folder. Processes are started in their own
session and killed (by process group) when the module's tests end.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from project_copy import project_root

ROOT = project_root()  # a copy: runs write nothing into the checkout
DASK = str(Path(sys.executable).with_name("dask"))
START_TIMEOUT = 30.0


@dataclass
class DaskProcesses:
    """A scheduler and its workers, as processes; ``security`` for a TLS cluster."""

    address: str
    worker_folder: Path
    processes: list[subprocess.Popen] = field(default_factory=list)
    security: dict[str, str] | None = None

    def client(self):  # a fresh Client each time: tests close it with `with`
        from distributed import Client
        from distributed.security import Security

        security = Security(require_encryption=True, **self.security) if self.security else None
        return Client(self.address, security=security, timeout=10, set_as_default=False)

    def config(self, folder: Path, **extra: object) -> Path:
        """A configuration file pointing at this cluster; records kept under ``folder``."""
        executor: dict[str, object] = {"address": self.address, "timeout": 10, **extra}
        if self.security:
            executor["security"] = {
                "tls_ca_file": self.security["tls_ca_file"],
                "tls_client_cert": self.security["tls_client_cert"],
                "tls_client_key": self.security["tls_client_key"],
            }
        return write_config(folder, executor)


def write_config(folder: Path, executor: dict[str, object]) -> Path:
    """A configuration with absolute run-log and catalog folders (the shared folder)."""
    path = folder / "runnable.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "pipeline-executor": {"type": "dask", "config": executor},
                "run-log-store": {
                    "type": "file-system",
                    "config": {"log_folder": str(folder / "run_logs")},
                },
                "catalog": {
                    "type": "file-system",
                    "config": {"catalog_location": str(folder / "catalog")},
                },
            }
        ),
        encoding="utf-8",
    )
    return path


def start(
    command: list[str], cwd: Path, log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen:
    """A process in its own session (so its children go with it), output to ``log``."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("RUNNABLE_")}
    environment.pop("PYTHONPATH", None)
    environment.update(env or {})
    with open(log, "wb") as handle:
        return subprocess.Popen(
            command,
            cwd=cwd,
            env=environment,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(processes: list[subprocess.Popen]) -> None:
    """SIGTERM each process group we started, then SIGKILL what is left after 5 s."""
    for process in reversed(processes):
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def start_scheduler(base: Path, tls: list[str] | None = None) -> DaskProcesses:
    """``dask scheduler`` in ``base/scheduler``, dashboard on 127.0.0.1 (a free port)."""
    folder = base / "scheduler"
    folder.mkdir()
    scheduler_file = folder / "scheduler.json"
    command = [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0"]
    command += ["--dashboard-address", "127.0.0.1:0", "--scheduler-file", str(scheduler_file)]
    command += ["--protocol", "tls", *tls] if tls else []
    process = start(command, folder, base / "scheduler.log")
    deadline = time.monotonic() + START_TIMEOUT
    while not scheduler_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            stop([process])
            raise RuntimeError((base / "scheduler.log").read_text())
        time.sleep(0.1)
    time.sleep(0.1)  # let the file's write finish
    address = json.loads(scheduler_file.read_text())["address"]
    return DaskProcesses(address=address, worker_folder=base / "workers", processes=[process])


def start_workers(
    cluster: DaskProcesses,
    n_workers: int,
    tls: list[str] | None = None,
    env: dict[str, str] | None = None,
    name: str = "workers",
) -> None:
    """``dask worker`` processes of 2 threads, started in ``cluster.worker_folder``."""
    cluster.worker_folder.mkdir(exist_ok=True)
    command = [DASK, "worker", cluster.address, "--host", "127.0.0.1", "--no-dashboard"]
    command += ["--nworkers", str(n_workers), "--nthreads", "2", *(tls or [])]
    log = cluster.worker_folder.parent / f"{name}.log"
    cluster.processes.append(start(command, cluster.worker_folder, log, env))


def wait_for_workers(cluster: DaskProcesses, n: int) -> None:
    with cluster.client() as client:
        client.wait_for_workers(n, timeout=START_TIMEOUT)


@pytest.fixture(scope="module")
def tcp_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaskProcesses]:
    """A plain scheduler and two worker processes of 2 threads, started by hand."""
    cluster = start_scheduler(tmp_path_factory.mktemp("tcp"))
    try:
        start_workers(cluster, 2)
        wait_for_workers(cluster, 2)
        yield cluster
    finally:
        stop(cluster.processes)


# --- certificates ----------------------------------------------------------------------


def make_certificates(folder: Path) -> dict[str, Path]:
    """A CA and a certificate per role (scheduler, worker, client), valid for 127.0.0.1."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    def write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return path

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(name("runnable-dask test CA"))
        .issuer_name(name("runnable-dask test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    paths = {"ca": folder / "ca.pem"}
    paths["ca"].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    for role in ("scheduler", "worker", "client"):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name(f"runnable-dask {role}"))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName("localhost"),
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    ]
                ),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        paths[f"{role}_cert"] = folder / f"{role}.pem"
        paths[f"{role}_cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        paths[f"{role}_key"] = write_key(key, folder / f"{role}.key")
    return paths


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def tls_cluster(
    tmp_path_factory: pytest.TempPathFactory, certificates: dict[str, Path]
) -> Iterator[DaskProcesses]:
    """A scheduler and one worker process that speak only TLS, each with its own cert."""
    c = certificates

    def role(name: str) -> list[str]:
        files = {"--tls-ca-file": c["ca"], "--tls-cert": c[f"{name}_cert"]}
        files["--tls-key"] = c[f"{name}_key"]
        return [str(part) for pair in files.items() for part in pair]

    cluster = start_scheduler(tmp_path_factory.mktemp("tls"), tls=role("scheduler"))
    cluster.security = {
        "tls_ca_file": str(c["ca"]),
        "tls_client_cert": str(c["client_cert"]),
        "tls_client_key": str(c["client_key"]),
    }
    try:
        start_workers(cluster, 1, tls=role("worker"))
        wait_for_workers(cluster, 1)
        yield cluster
    finally:
        stop(cluster.processes)
