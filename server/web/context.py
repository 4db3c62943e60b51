"""What every route module reaches through `request.app.state.leitai`: the
settings, the node, the sign-in rules, and page rendering (language, string
catalog, the rule sheet the browser reads)."""

import hmac
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from markupsafe import Markup
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from .. import protocol
from ..i18n import translator
from ..node import Node
from ..settings import Settings
from ..transport import FastPath
from .security import DEVICE_COOKIE, SESSION_COOKIE, Auth, Device, HostSession

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def language(request: HTTPConnection, default: str = "zh-CN", browser: bool = True) -> str:
    """The page's language: `?lang=` first; then (`browser`) the first of the browser's
    Accept-Language entries that is Chinese or English; else `default` (the show's)."""
    lang = request.query_params.get("lang")
    if lang:
        return "en" if lang.lower().startswith("en") else "zh-CN"
    if browser:
        for entry in request.headers.get("accept-language", "").split(","):
            tag = entry.split(";")[0].strip().lower()
            if tag.startswith(("en", "zh")):
                return "en" if tag.startswith("en") else "zh-CN"
    return default


def script_json(value: Any) -> Markup:
    """JSON that is safe inside <script type="application/json">."""
    text = orjson.dumps(value).decode()
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)


@dataclass
class Leitai:
    settings: Settings
    node: Node
    auth: Auth
    fast_path: FastPath
    metrics: Any
    sessions: Any = None  # web/sessions.py: which host sessions were ended; the sign-in throttle
    templates: Jinja2Templates = field(default_factory=lambda: Jinja2Templates(directory=str(TEMPLATES)))
    version: str = field(default_factory=lambda: str(int(time.time())))

    @property
    def device_secret(self) -> str:
        """Signs proof-of-work challenges (see web/devices.py)."""
        return self.auth.challenge_secret

    def __post_init__(self) -> None:
        self.rules = protocol.rules(self.settings.text_limits, self.settings.floor_warn_share)
        self.rules_json = script_json(self.rules)

    def public_url(self, request: HTTPConnection) -> str:
        return self.settings.public_url.rstrip("/") or str(request.base_url).rstrip("/")

    def render(
        self,
        request: Request,
        name: str,
        status_code: int = 200,
        show_lang: str = "zh-CN",
        browser: bool = True,
        **context: Any,
    ) -> Response:
        """A page in its language (`language`: `?lang=`, the browser's unless `browser`
        is False, then `show_lang`)."""
        lang = language(request, show_lang, browser)
        context.update(
            lang=lang,
            t=translator(lang),
            v=self.version,
            rules=self.rules,
            rules_json=self.rules_json,
            limits=self.settings.text_limits,
            public_url=self.public_url(request),
        )
        return self.templates.TemplateResponse(request, name, context, status_code=status_code)

    def session(self, request: HTTPConnection) -> HostSession | None:
        """The request's host session: signed, not expired, not ended."""
        session = self.auth.session(request.cookies.get(SESSION_COOKIE))
        return session if self.sessions.valid(session) else None

    def signed_in(self, request: HTTPConnection) -> bool:
        return self.session(request) is not None

    def hidden(self, request: HTTPConnection, state: Any, key: str = "") -> bool:
        """A draft show is not public: to anyone but a host (or an overlay on the show's
        keyed address) it answers exactly as an unknown slug does."""
        if state.status != "draft":
            return False
        if key and hmac.compare_digest(key, state.overlay_key):
            return False
        return not self.signed_in(request)  # guard: draft hidden

    async def runtime(self, request: HTTPConnection, slug: str, key: str = "") -> Any:
        """The show's runtime if this request may see it, else None (as for an unknown slug)."""
        rt = await self.node.runtime(slug)
        if rt is None or self.hidden(request, rt.state, key):
            return None
        return rt

    def device(self, request: HTTPConnection) -> Device | None:
        return self.auth.device(request.cookies.get(DEVICE_COOKIE))

    def secure(self, request: HTTPConnection) -> bool:
        return request.url.scheme in ("https", "wss")


def leitai(request: HTTPConnection) -> Leitai:
    ctx: Leitai = request.app.state.leitai
    return ctx
