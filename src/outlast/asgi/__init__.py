"""ASGI plumbing both transports share: who the caller is, and reading a bounded body.

:mod:`outlast.http` and :mod:`outlast.a2a` are siblings; what both need lives here, below them.
"""
