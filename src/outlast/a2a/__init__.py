"""The A2A (Agent2Agent protocol 1.0) transport: the same durable runs, reached over A2A.

Served when the ``a2a`` extra is installed (``pip install 'outlast[a2a]'``), unless
``--no-a2a``; ``--a2a`` makes it required. This module imports nothing of a2a-sdk itself, so the
server runs without the extra, and the transport is built on first use
(:mod:`outlast.a2a.deferred`).
"""

from __future__ import annotations

import importlib.util
import logging
from typing import TYPE_CHECKING

from outlast.config import OPTIONS_BY_DEST, Settings

if TYPE_CHECKING:
    from outlast.a2a.deferred import DeferredA2A
    from outlast.engine import Engine

log = logging.getLogger("outlast.a2a")

# Imported by the A2A transport; the a2a extra installs them.
REQUIRED_MODULES = ("a2a", "sqlalchemy", "sse_starlette", "aiosqlite")


def missing_modules() -> list[str]:
    return [name for name in REQUIRED_MODULES if importlib.util.find_spec(name) is None]


def create_a2a(settings: Settings, engine: Engine) -> DeferredA2A | None:
    """The A2A transport for ``engine``, or ``None`` when it is off (or not installed, in auto).

    Raises ``ValueError`` (a one-line message for the CLI) when A2A was asked for with ``--a2a``
    but the extra is missing, or its settings are invalid.
    """
    mode = settings.a2a.enabled
    # The command line checks the mode against the option table; this catches Settings built in
    # code with a mode the table does not know.
    modes = OPTIONS_BY_DEST["a2a.enabled"].choices
    if mode not in modes:
        raise ValueError(f"OUTLAST_A2A must be one of {', '.join(modes)}, not {mode!r}")
    if mode == "off":
        return None
    missing = missing_modules()
    if missing:
        if mode == "on":
            raise ValueError(
                "--a2a needs the a2a extra (missing: " + ", ".join(missing) + "); install it "
                "with: pip install 'outlast[a2a]'"
            )
        log.debug("A2A not served: the a2a extra is not installed (%s)", ", ".join(missing))
        return None
    if settings.a2a.grpc_port is not None and importlib.util.find_spec("grpc") is None:
        raise ValueError(
            "--a2a-grpc-port needs grpcio (missing: grpc); install it with: "
            "pip install 'outlast[a2a]'"
        )
    from outlast.a2a.deferred import DeferredA2A

    return DeferredA2A(settings, engine)


__all__ = ["create_a2a"]
