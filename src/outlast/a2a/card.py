"""The agent card served at ``/.well-known/agent-card.json``.

a2a-sdk is imported when the card is built (when A2A is first used), not with this module: the
``--a2a-skill`` values are checked at start with :func:`skill_fields`, which needs none of it.
"""

from __future__ import annotations

import email.utils
import hashlib
import inspect
import json
import re
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

import outlast
from outlast.agents.base import Agent
from outlast.config import Settings

if TYPE_CHECKING:
    from a2a.types import AgentCard, AgentSkill

A2A_PATH = "/v1/a2a"
"""Where the JSON-RPC endpoint (``POST``) and the HTTP+JSON routes (below it) are mounted."""
INPUT_MODES = ["text/plain", "application/json", "text/*", "image/*", "application/pdf"]
"""The media types a message part may have unless ``--a2a-input-mode`` says otherwise: text,
JSON, and the files a model takes (images, PDFs). An arbitrary binary type would reach the agent
as a file no model reads, so it is refused up front, as A2A's ``ContentTypeNotSupportedError``."""
OUTPUT_MODES = ["text/plain", "application/json"]


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "skill"


def _skill(value: Any, where: str) -> dict[str, Any]:
    if isinstance(value, str):
        name, sep, description = value.partition(":")
        if not sep or not name.strip() or not description.strip():
            raise ValueError(
                f"{where}: expected 'Name: description' or a JSON object, got {value!r}"
            )
        value = {"name": name.strip(), "description": description.strip()}
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        raise ValueError(f"{where}: a skill needs at least a 'name' and a 'description'")
    unknown = set(value) - {"id", "name", "description", "tags", "examples"}
    if unknown:
        raise ValueError(f"{where}: unknown skill field(s): {', '.join(sorted(unknown))}")
    skill_id = str(value.get("id") or _slug(value["name"]))
    tags = value.get("tags") or [skill_id]
    examples = value.get("examples") or []
    if not all(isinstance(t, str) for t in tags) or not all(isinstance(e, str) for e in examples):
        raise ValueError(f"{where}: 'tags' and 'examples' must be lists of strings")
    return {
        "id": skill_id,
        "name": value["name"],
        "description": str(value.get("description") or value["name"]),
        "tags": tags,
        "examples": examples,
    }


def skill_fields(values: list[str]) -> list[dict[str, Any]]:
    """``--a2a-skill`` values: ``Name: description``, a JSON object, or a JSON array of either;
    the fields of each skill. Raises ``ValueError`` (one line for the CLI) for a bad one."""
    skills: list[dict[str, Any]] = []
    for number, text in enumerate(values, 1):
        where = f"--a2a-skill #{number}"
        stripped = text.strip()
        if stripped.startswith(("{", "[")):
            try:
                parsed = json.loads(stripped)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{where}: not valid JSON ({exc})") from None
            items = parsed if isinstance(parsed, list) else [parsed]
            skills.extend(_skill(item, where) for item in items)
        else:
            skills.append(_skill(text, where))
    return skills


def parse_skills(values: list[str]) -> list[AgentSkill]:
    """The card's skills from ``--a2a-skill`` values (see :func:`skill_fields`)."""
    from a2a.types import AgentSkill

    return [AgentSkill(**fields) for fields in skill_fields(values)]


def public_url(settings: Settings) -> str:
    """The base URL clients reach this server at."""
    if settings.a2a.url:
        return settings.a2a.url.rstrip("/")
    host = settings.host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


def build_agent_card(settings: Settings, agent: Agent) -> AgentCard:
    """The card: name, description and skills from the settings (or the agent), both bindings."""
    from a2a.types import (
        AgentCapabilities,
        AgentCard,
        AgentInterface,
        AgentSkill,
        HTTPAuthSecurityScheme,
        SecurityRequirement,
        SecurityScheme,
        StringList,
    )
    from a2a.utils.constants import PROTOCOL_VERSION_1_0, TransportProtocol

    name = settings.a2a.name or settings.agent
    description = settings.a2a.description or (
        inspect.getdoc(agent) or "An agent hosted by outlast."
    ).split("\n\n")[0].replace("\n", " ")
    skills = parse_skills(settings.a2a.skills) or [
        AgentSkill(id="default", name=name, description=description, tags=["default"])
    ]
    url = public_url(settings) + A2A_PATH
    card = AgentCard(
        name=name,
        description=description,
        version=outlast.__version__,
        supported_interfaces=[
            AgentInterface(
                url=url,
                protocol_binding=TransportProtocol.JSONRPC.value,
                protocol_version=PROTOCOL_VERSION_1_0,
            ),
            AgentInterface(
                url=url,
                protocol_binding=TransportProtocol.HTTP_JSON.value,
                protocol_version=PROTOCOL_VERSION_1_0,
            ),
        ],
        capabilities=AgentCapabilities(streaming=True, push_notifications=True),
        default_input_modes=settings.a2a.input_modes or INPUT_MODES,
        default_output_modes=OUTPUT_MODES,
        skills=skills,
    )
    if settings.a2a.grpc_port is not None:
        # gRPC listens on loopback only (outlast.a2a.grpc_server): that address as a target,
        # unless a proxy's is given.
        card.supported_interfaces.append(
            AgentInterface(
                url=settings.a2a.grpc_url or f"127.0.0.1:{settings.a2a.grpc_port}",
                protocol_binding=TransportProtocol.GRPC.value,
                protocol_version=PROTOCOL_VERSION_1_0,
            )
        )
    if settings.api_keys:
        card.security_schemes["bearer"].CopyFrom(
            SecurityScheme(
                http_auth_security_scheme=HTTPAuthSecurityScheme(
                    scheme="Bearer", description="An API key of the server (--api-key)."
                )
            )
        )
        card.security_requirements.append(
            SecurityRequirement(schemes={"bearer": StringList(list=[])})
        )
    return card


def _not_modified(request: Request, etag: str, modified: int) -> bool:
    """Whether the client's copy is current (RFC 9110 13.2.2: If-None-Match, when sent, decides
    alone; else If-Modified-Since, to the second)."""
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
        return "*" in tags or etag.removeprefix("W/") in tags
    since = request.headers.get("if-modified-since")
    if since is None:
        return False
    try:
        parsed = email.utils.parsedate_to_datetime(since)
    except (TypeError, ValueError, IndexError):
        return False  # an unreadable date is ignored, as the RFC says
    return parsed.tzinfo is not None and modified <= int(parsed.timestamp())


def card_routes(card: AgentCard, path: str, max_age: float, modified: float) -> list[BaseRoute]:
    """``GET`` of the agent card, cacheable: ``Cache-Control: public, max-age=…``, a strong
    ``ETag`` (the card is one fixed body), ``Last-Modified`` (``modified``: when this server
    made it), and ``304 Not Modified`` for a client whose copy is current."""
    from a2a.server.request_handlers.response_helpers import agent_card_to_dict

    # The card does not change while the server runs: its body and headers are made once.
    body = orjson.dumps(agent_card_to_dict(card), option=orjson.OPT_SORT_KEYS)
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    second = int(modified)
    headers = {
        "Cache-Control": f"public, max-age={int(max_age)}",
        "ETag": etag,
        "Last-Modified": email.utils.formatdate(second, usegmt=True),
    }

    async def agent_card(request: Request) -> Response:
        if _not_modified(request, etag, second):
            return Response(status_code=304, headers=headers)
        return Response(body, media_type="application/json", headers=headers)

    return [Route(path, agent_card, methods=["GET"])]
