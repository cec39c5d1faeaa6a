"""A small client for the lab's API server: JSON over HTTPS with the lab's client certificate.

The lab needs a handful of calls (readiness, create and list nodes, read back what a stack
created), and tests must check objects through the API server itself rather than through
Pulumi's view of them; a kubeconfig-driven client library would be a large dependency for that.
"""

from __future__ import annotations

import http.client
import json
import ssl
import threading
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class ApiError(Exception):
    def __init__(self, status: int, body: str, method: str, path: str):
        self.status, self.body = status, body
        try:
            message = json.loads(body).get("message", body)
        except ValueError:
            message = body
        super().__init__(f"{method} {path}: HTTP {status}: {message[:500]}")


@dataclass(frozen=True)
class Credentials:
    host: str
    port: int
    ca: Path
    cert: Path | None  # a client certificate (the lab's, kubeadm's admin.conf), or
    key: Path | None
    token: str | None = None  # a bearer token (a kubeconfig's `token`)


class KubeApi:
    def __init__(self, creds: Credentials, timeout: float = 30.0):
        self.creds = creds
        self._ctx = ssl.create_default_context(cafile=str(creds.ca))
        if creds.cert is not None and creds.key is not None:
            self._ctx.load_cert_chain(str(creds.cert), str(creds.key))
        self._timeout = timeout
        self._local = threading.local()

    def _conn(self) -> http.client.HTTPSConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPSConnection(self.creds.host, self.creds.port, context=self._ctx, timeout=self._timeout)
            self._local.conn = conn
        return conn

    def request(
        self, method: str, path: str, body: Any = None, *, content_type: str = "application/json",
        query: dict[str, str] | None = None,
    ) -> Any:
        if query:
            path = f"{path}?{urllib.parse.urlencode(query)}"
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        headers = {"Accept": "application/json", "Content-Type": content_type}
        if self.creds.token:
            headers["Authorization"] = f"Bearer {self.creds.token}"
        for attempt in (1, 2):
            conn = self._conn()
            try:
                conn.request(method, path, body=data, headers=headers)
                response = conn.getresponse()
                text = response.read().decode(errors="replace")
                break
            except (ConnectionError, http.client.HTTPException, OSError):
                conn.close()
                self._local.conn = None
                if attempt == 2:
                    raise
        if response.status >= 400:
            raise ApiError(response.status, text, method, path)
        return json.loads(text) if text else None

    def get(self, path: str, **query: str) -> Any:
        return self.request("GET", path, query=query or None)

    def create(self, path: str, obj: dict[str, Any]) -> Any:
        return self.request("POST", path, obj)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def exists(self, path: str) -> bool:
        try:
            self.get(path)
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def ready(self) -> bool:
        try:
            conn = self._conn()
            conn.request("GET", "/readyz")
            response = conn.getresponse()
            response.read()
            return response.status == 200
        except (OSError, http.client.HTTPException):
            self._local.conn = None
            return False
