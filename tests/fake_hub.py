"""An in-process stand-in for the Hub's HTTP API, plugged into huggingface_hub's client factory
through an httpx MockTransport: the real `create_repo` and `upload_folder` run, nothing opens a socket.

It answers the endpoints a push uses (repo create, validate-yaml, preupload, commit, and repo info,
which `create_repo(exist_ok=True)` asks after a 401/403) and records what was sent.
"""

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx2
from huggingface_hub.utils._http import hf_request_event_hook

ENDPOINT = "https://hub.test"
USER = "alice"


@dataclass
class FakeHub:
    endpoint: str = ENDPOINT
    create_status: int = 200
    card_errors: list[str] = field(default_factory=list)
    transport_error: Exception | None = None
    requests: list[httpx2.Request] = field(default_factory=list)
    created: list[dict] = field(default_factory=list)
    validated_cards: list[str] = field(default_factory=list)
    preuploaded: list[str] = field(default_factory=list)
    commits: list[dict] = field(default_factory=list)  # {"repo_id", "summary", "files": {path: bytes}}

    def client_factory(self) -> Callable[[], httpx2.Client]:
        # The same request hook as huggingface_hub's default client, so its offline check still runs.
        return lambda: httpx2.Client(
            transport=httpx2.MockTransport(self.handle), event_hooks={"request": [hf_request_event_hook]}
        )

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        if request.url.path == "/api/agent-harnesses":
            # huggingface_hub's user-agent detection, asked when an AI agent's env vars are set:
            # not part of a push, so not recorded (the host is still this stand-in's).
            assert str(request.url).startswith(self.endpoint)
            return httpx2.Response(404)
        self.requests.append(request)
        if self.transport_error is not None:
            raise self.transport_error
        path = request.url.path
        if request.method == "POST" and path == "/api/repos/create":
            return self._create(json.loads(request.content))
        if request.method == "POST" and path == "/api/validate-yaml":
            self.validated_cards.append(json.loads(request.content)["content"])
            if self.card_errors:
                return httpx2.Response(400, json={"errors": [{"message": m} for m in self.card_errors]})
            return httpx2.Response(200, json={"errors": [], "warnings": []})
        if match := re.fullmatch(r"/api/models/(.+)/preupload/main", path):
            files = json.loads(request.content)["files"]
            self.preuploaded += [f["path"] for f in files]
            modes = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]
            return httpx2.Response(200, json={"files": modes})
        if match := re.fullmatch(r"/api/models/(.+)/commit/main", path):
            return self._commit(match.group(1), request.content)
        if request.method == "GET" and path.startswith("/api/models/"):
            # repo_info after a refused create: this caller may not see the repository either.
            return httpx2.Response(self.create_status, json={"error": "Repository not found"})
        return httpx2.Response(404, json={"error": f"stand-in has no {request.method} {path}"})

    def _create(self, payload: dict) -> httpx2.Response:
        if self.create_status != 200:
            messages = {401: "Invalid credentials in Authorization header", 403: "You don't have the rights"}
            return httpx2.Response(
                self.create_status, json={"error": messages.get(self.create_status, "refused")}
            )
        self.created.append(payload)
        namespace = payload.get("organization") or USER
        return httpx2.Response(200, json={"url": f"{self.endpoint}/{namespace}/{payload['name']}"})

    def _commit(self, repo_id: str, body: bytes) -> httpx2.Response:
        lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        header = next(line["value"] for line in lines if line["key"] == "header")
        files = {
            line["value"]["path"]: base64.b64decode(line["value"]["content"])
            for line in lines
            if line["key"] == "file"
        }
        self.commits.append({"repo_id": repo_id, "summary": header["summary"], "files": files})
        oid = f"{len(self.commits):040x}"
        return httpx2.Response(
            200, json={"commitUrl": f"{self.endpoint}/{repo_id}/commit/{oid}", "commitOid": oid}
        )

    @property
    def endpoints_called(self) -> list[str]:
        names = []
        for request in self.requests:
            path = request.url.path
            name = path.rsplit("/", 2)[-2] if re.search(r"/(preupload|commit)/main$", path) else path
            if not names or names[-1] != name:
                names.append(name)
        return names
