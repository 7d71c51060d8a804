"""`/`: the web chat page, and `/static/*` its script and style (no CDN: it works offline)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

router = APIRouter(include_in_schema=False)

# Scripts and styles from this origin only, no inline code, no framing: a pasted key cannot be
# read by injected markup, and answers are inserted as text, never as HTML.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {"Content-Security-Policy": CSP, "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}


def web_dir() -> Path:
    return Path(str(resources.files("serving").joinpath("web")))


@router.get("/")
async def index() -> FileResponse:
    return FileResponse(web_dir() / "index.html", media_type="text/html", headers=SECURITY_HEADERS)


def static_files() -> StaticFiles:
    return StaticFiles(directory=web_dir(), html=False)
