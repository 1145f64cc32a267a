"""The web console: watch, inspect, start, answer and stop runs in a browser.

``outlast serve`` serves it at ``/console`` (``/`` redirects there) from files shipped inside the
package (plain ES modules and CSS, no build step). The page talks to the public Responses API
with the key its user typed, plus two small reads of its own under ``/v1/console/`` (keyed and
scoped to the caller like every ``/v1/`` route): :mod:`outlast.console.api`.
"""

from __future__ import annotations

from outlast.console.routes import console_routes

__all__ = ["console_routes"]
