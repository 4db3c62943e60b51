"""`python -m server`: start Leitai with the settings from the environment."""

import os
import sys

import uvicorn

from .edge import EdgeHttpProtocol, EdgeWebSocketProtocol
from .logs import log_config
from .settings import Settings


def main() -> None:
    settings = Settings.from_env()
    if settings.workers > 1 and settings.embedded:
        sys.exit(
            "WORKERS > 1 needs REDIS_URL: the embedded store lives in one process. "
            "Set REDIS_URL=redis://127.0.0.1:6379/0 or drop WORKERS."
        )
    if settings.embedded:  # refused here with a plain message; the store takes the same lock
        from .store.lock import DataDirInUse, lock_data_dir

        try:
            lock_data_dir(settings.data_path())
        except DataDirInUse as exc:
            sys.exit(str(exc))
    token, made = settings.made_host_token()
    if settings.host_token:
        shown = "(set by HOST_TOKEN, not shown)"
    elif made:  # guard: token shown once
        shown = f"{token}   (made now and shown this once; kept in {settings.data_path() / 'host_token'})"
    else:
        shown = f"(kept in {settings.data_path() / 'host_token'}, not shown)"
    os.environ["HOST_TOKEN"] = token  # workers read the same token
    os.environ.setdefault("SECRET_KEY", settings.resolved_secret())
    base = settings.public_url.rstrip("/") or f"http://{settings.host}:{settings.port}"
    mode = f"Redis ({settings.redis_url.split('@')[-1]})" if settings.redis_url else f"embedded ({settings.data_dir})"
    print(
        f"""
  Leitai 擂台 — {mode}, {settings.workers} process(es)
  Audience  {base}/s/demo
  Overlay   {base}/overlay/demo     (OBS Browser Source, 1920x1080)
  Console   {base}/console/demo
  Producer  {base}/shows
  Host token: {shown}
""",
        flush=True,
    )
    uvicorn.run(
        "server.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        backlog=settings.backlog,
        loop="uvloop",
        http=EdgeHttpProtocol,  # httptools, with a header deadline and a cap per address
        ws=EdgeWebSocketProtocol,  # websockets-sansio (the fast write path's), counted per address
        forwarded_allow_ips=settings.forwarded_allow_ips,
        ws_max_size=settings.ws_max_size,
        ws_per_message_deflate=False,
        ws_ping_interval=settings.ws_ping_interval_s,
        ws_ping_timeout=settings.ws_ping_timeout_s,
        timeout_graceful_shutdown=5,
        log_level=settings.log_level,
        server_header=False,
        log_config=log_config(settings.log_format, settings.log_level, settings.log_sockets),
    )


if __name__ == "__main__":
    main()
