"""Whether anything listens at a scheduler's address, asked once before Dask's client.

Dask's ``Client`` retries a refused connection until its timeout; a refusal means no
process listens there, which waiting does not change, so the run fails at once.
"""

from __future__ import annotations

import socket

PROBE_TIMEOUT = 5.0


def refused(address: str, timeout: float) -> str:
    """Why nothing listens at a ``tcp://`` or ``tls://`` address, or "" to let Dask try."""
    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        scheme, location = parse_address(address)
        host, port = parse_host_port(location)
    except ValueError:
        return ""  # Dask words its own message about an address it cannot read
    if scheme not in ("tcp", "tls"):
        return ""
    try:
        with socket.create_connection((host, port), timeout=min(timeout, PROBE_TIMEOUT)):
            return ""
    except ConnectionRefusedError as exc:
        return f"the connection was refused ({exc.strerror}): nothing listens on port {port}"
    except OSError:
        return ""  # slow or unreachable: Dask waits its timeout, as asked
