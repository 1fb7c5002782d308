"""Two gateway mechanisms no vendor is named in: one path served by several dialects
(the first that `claims` a request answers it, else the owner without `claims`), and
answers that need no image (`answer_without_image`, e.g. a token endpoint)."""
from __future__ import annotations

import base64

import pytest
from starlette.responses import JSONResponse
from starlette.testclient import TestClient

from gateway.app import create_app
from tests.fakes import FakeEngine, fake_card_image
from tests.test_gateway_core import ToyDialect

IMAGE = base64.b64encode(fake_card_image()).decode()


class RootToy(ToyDialect):
    """ToyDialect at `POST /`, answering with its own name."""

    def __init__(self, name: str, claim_header: str | None = None, methods=("POST",)):
        super().__init__()
        self.name = name
        self.methods = list(methods)
        if claim_header is not None:
            self.claims = lambda method, headers, query: claim_header in headers or f"via={name}" in query

    def routes(self):
        return [("/", self.methods)]

    def render(self, call, reading, request_id, elapsed_ms):
        return JSONResponse({"dialect": self.name})

    def render_error(self, exc, request_id, req=None):
        return JSONResponse({"dialect": self.name, "error": type(exc).__name__}, status_code=404)


class TokenToy(ToyDialect):
    def routes(self):
        return [*super().routes(), ("/toy/token", ["GET"])]

    def answer_without_image(self, req, credential, request_id, now):
        if req.path != "/toy/token":
            return None
        return JSONResponse({"token": f"for-{credential}", "at": int(now)})


def client(*dialects, **kwargs) -> TestClient:
    return TestClient(create_app({}, FakeEngine(), dialects=list(dialects), clock=lambda: 1234.5, **kwargs))


@pytest.mark.parametrize("order", ["default-first", "claimant-first"])
def test_a_shared_path_goes_to_the_dialect_that_claims_it(order):
    default, claimant = RootToy("default"), RootToy("claimant", claim_header="x-claim")
    app = client(*((default, claimant) if order == "default-first" else (claimant, default)))
    assert app.post("/", json={"image": IMAGE}).json() == {"dialect": "default"}
    assert app.post("/", json={"image": IMAGE}, headers={"x-claim": "1"}).json() == {"dialect": "claimant"}
    assert app.post("/?via=claimant", json={"image": IMAGE}).json() == {"dialect": "claimant"}


def test_a_claimed_request_with_a_method_its_dialect_does_not_serve_is_its_not_found():
    app = client(RootToy("default", methods=("GET", "POST")), RootToy("claimant", claim_header="x-claim"))
    answer = app.get("/", headers={"x-claim": "1"})
    assert answer.status_code == 404 and answer.json() == {"dialect": "claimant", "error": "RouteNotFoundError"}
    assert app.get("/", params={"image": IMAGE}).json()["dialect"] == "default"


def test_a_path_served_by_a_claimant_alone_takes_everything():
    assert client(RootToy("only", claim_header="x-claim")).post("/", json={"image": IMAGE}).json() == {"dialect": "only"}


def test_answer_without_image_skips_parse_and_engine():
    engine, toy = FakeEngine(), TokenToy()
    app = TestClient(create_app({}, engine, dialects=[toy], clock=lambda: 1234.5))
    answer = app.get("/toy/token", headers={"x-toy-key": "k1"})
    assert answer.json() == {"token": "for-k1", "at": 1234}
    assert engine.calls == [] and toy.seen == []
    assert app.get("/toy/token", headers={"x-toy-key": "bad"}).json()["error"] == "auth"  # authenticate() still runs
    assert app.post("/toy/read", json={"image": IMAGE}).json()["number"]  # other paths go on to parse()
    metrics = app.get("/metrics").text
    assert 'cardgate_requests_total{dialect="toy",status="200",code="ok"}' in metrics
