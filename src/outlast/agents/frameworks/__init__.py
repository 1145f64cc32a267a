"""The adapters of the agent frameworks outlast hosts; each is imported only when a target needs it.

Each turns its framework's stream into the outputs of :mod:`outlast.protocol.outputs`, using the
shared pieces of :mod:`outlast.agents.history` and :mod:`outlast.agents.responses_stream`.
"""
