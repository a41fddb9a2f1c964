"""The yardsticks: bare Starlette and bare FastAPI apps answering the same shapes as the node."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def health(_: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def info(_: Request) -> JSONResponse:
    return JSONResponse(
        {
            "name": "AnarQ&Q node",
            "version": "0.0.0",
            "backend": "embedded",
            "public_url": "http://127.0.0.1:8080",
            "modules": ["node"],
            "worker_id": "01J00000000000000000000000",
            "started_at": "2026-01-01T00:00:00Z",
        }
    )


async def profile(_: Request) -> JSONResponse:
    return JSONResponse(
        {
            "name": "AnarQ&Q node",
            "description": "",
            "contact": "",
            "avatar_cid": None,
            "revision": 0,
            "updated_at": "2026-01-01T00:00:00Z",
        }
    )


app = Starlette(
    routes=[Route("/health", health), Route("/node/info", info), Route("/node/profile", profile)]
)


fastapi_app = FastAPI()


@fastapi_app.get("/health")
async def fastapi_health() -> dict[str, str]:
    return {"status": "ok"}
