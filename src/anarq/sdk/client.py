"""`Client`: talk to a node over HTTP; errors come back as `ApiError` carrying the problem."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

import httpx

from anarq.sdk.signing import RequestSigner

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_TIMEOUT_SECONDS = 10.0


class ApiError(Exception):
    """The node answered with an error; `problem` is its RFC 9457 body."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        self.code = str(problem.get("code", "unknown"))
        super().__init__(
            f"{problem.get('title', 'Error')}: {problem.get('detail', '')}".rstrip(": ")
        )


class Client:
    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        token: str | None = None,
        signer: RequestSigner | None = None,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self.signer = signer
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout_seconds, transport=transport
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request; the decoded JSON body on success, `ApiError` otherwise."""
        request = self._http.build_request(method, path, **kwargs)
        if self.signer is not None:
            self.signer.sign(request)
        response = self._http.send(request)
        if response.status_code >= 400:
            try:
                problem = response.json()
            except ValueError:
                problem = {"title": response.reason_phrase, "detail": response.text[:200]}
            raise ApiError(response.status_code, problem)
        if not response.content:
            return None
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.content

    @contextmanager
    def stream(self, method: str, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        """Send a request and read the response body as it arrives (`iter_bytes()`)."""
        request = self._http.build_request(method, path, **kwargs)
        if self.signer is not None:
            self.signer.sign(request)
        response = self._http.send(request, stream=True)
        try:
            if response.status_code >= 400:
                response.read()
                try:
                    problem = response.json()
                except ValueError:
                    problem = {"title": response.reason_phrase, "detail": response.text[:200]}
                raise ApiError(response.status_code, problem)
            yield response
        finally:
            response.close()

    # Health -------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", "/health")
        return result

    def ready(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", "/ready")
        return result

    # Node module ----------------------------------------------------------------------

    def node_info(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", "/node/info")
        return result

    def node_profile(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", "/node/profile")
        return result

    def update_node_profile(self, **changes: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("PATCH", "/node/profile", json=changes)
        return result

    def set_node_avatar(self, data: bytes, media_type: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "PUT", "/node/avatar", content=data, headers={"Content-Type": media_type}
        )
        return result

    def node_workers(self, *, include_stopped: bool = False) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.request(
            "GET", "/node/workers", params={"include_stopped": include_stopped}
        )
        return result

    def node_activity(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.request("GET", "/node/activity")
        return result
