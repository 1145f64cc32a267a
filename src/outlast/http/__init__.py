"""The Responses API over HTTP: routes, request parsing, SSE, errors, auth.

The app that serves it, with the A2A transport beside it, is built by :mod:`outlast.server`.
"""
