"""What outlast ships for trying and testing agents offline: :mod:`outlast.testing.model`, a small
OpenAI-compatible model server (``outlast testmodel``).

Importing this package is cheap (``outlast``'s parser takes :func:`add_arguments` from it); the
server's module loads Starlette and uvicorn.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``outlast testmodel`` (and ``python -m outlast.testing.model``)."""
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8001, help="port (default 8001)")
    parser.add_argument("--deltas", type=int, default=None, metavar="N",
                        help="answer every request with N text chunks of 16 bytes instead "
                             "(for benchmarks)")  # fmt: skip
