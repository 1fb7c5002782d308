"""Face++ cardpp bank card dialect (beta and v1).

Unit tests of field merging (query, urlencoded, multipart with `form-data` and
the old official SDK's `file` dispositions), auth, rendering and the error
table; then end to end against a live gateway on 127.0.0.1 with python-facepp
(multipart and urlencoded) and hand-built requests the way public callers and
the official PythonSDK send them, and image URLs through a mocked transport.
"""
from __future__ import annotations

import base64
import json
import re
import threading
import time

import httpx
import pytest
from starlette.testclient import TestClient

from adapters import facepp
from adapters.base import VendorError
from core.request import EngineCall, ImageSource, IncomingRequest
from engine import errors as engine_errors
from engine.types import BankInfo, ReadOptions
from core import errors as gw
from gateway.app import create_app
from gateway.metrics import parse_text
from tests.fakes import make_reading
from tests.test_huawei_support import CheckingEngine, photo, real_engine_and_card, truncated_jpeg

facepplib = pytest.importorskip("facepplib")
from facepplib import FacePP  # noqa: E402
from facepplib import exceptions as fpp_errors  # noqa: E402

KEY, SECRET = "fpp-test-key-0000000000000000000", "fpp-test-secret-00000000000000000"
SETTINGS = {"credentials": {KEY: SECRET}}
REQUEST_ID = re.compile(r"^\d{10},[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
GIF = b"GIF89a" + b"\x01\x00\x01\x00\x80\x00\x00" + b"\x00" * 30


def incoming(path="/cardpp/v1/ocrbankcard", *, query=b"", content_type=None, body=b"") -> IncomingRequest:
    headers = [("content-type", content_type)] if content_type else []
    return IncomingRequest("POST", path, path.encode(), query, headers, body)


def multipart(parts: list[tuple[str, str, bytes]], boundary: str = "------PylibFormBoundaryTest") -> tuple[str, bytes]:
    """(content type, body) of a hand-built multipart body; parts are (disposition, name, value).

    A part whose value is an image gets a filename and a Content-Type, like the SDKs send.
    """
    chunks = []
    for disposition, name, value in parts:
        head = f'Content-Disposition: {disposition}; name="{name}"'
        if name.startswith("image_file"):
            head += f'; filename="{name}.jpg"\r\nContent-Type: image/jpeg'
        chunks.append(f"--{boundary}\r\n{head}\r\n\r\n".encode() + value + b"\r\n")
    body = b"".join(chunks) + f"--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", body


# --- fields ------------------------------------------------------------------------------


def test_fields_merge_query_form_and_multipart():
    ctype, body = multipart([("form-data", "api_key", b"k"), ("file", "image_file", b"\xff\xd8jpeg")])
    fields = facepp.request_fields(incoming(query=b"api_secret=s&api_key=from-query", content_type=ctype, body=body))
    assert fields.raw("api_key") == b"k"  # the body wins over the query string
    assert fields.raw("api_secret") == b"s"
    assert fields.raw("image_file") == b"\xff\xd8jpeg"  # a `Content-Disposition: file` part counts

    body = b"image_base64=%2F9j%2F4A%3D%3D&api_key=k&api_secret=s"
    fields = facepp.request_fields(incoming(content_type="application/x-www-form-urlencoded", body=body))
    assert fields.raw("image_base64") == b"/9j/4A==" and fields.raw("api_secret") == b"s"

    fields = facepp.request_fields(incoming(query=b"api_key=k&image_url=https%3A%2F%2Fexample.com%2Fc.jpg"))
    assert fields.raw("image_url") == b"https://example.com/c.jpg"


def test_image_precedence_file_then_base64_then_url():
    fields = facepp.Fields()
    fields.add("image_url", b"https://example.com/a.jpg", override=True)
    assert facepp.choose_image(fields) == ("image_url", b"https://example.com/a.jpg")
    fields.add("image_base64", b"AAAA", override=True)
    assert facepp.choose_image(fields) == ("image_base64", b"AAAA")
    fields.add("image_file", b"\xff\xd8", override=True)
    assert facepp.choose_image(fields) == ("image_file", b"\xff\xd8")
    assert facepp.choose_image(facepp.Fields()) is None


def test_parse():
    dialect = facepp.create(SETTINGS, False)
    jpeg = photo()
    call = dialect.parse(incoming("/cardpp/beta/ocrbankcard", query=b"image_base64=" + base64.b64encode(jpeg).replace(b"+", b"%2B").replace(b"/", b"%2F").replace(b"=", b"%3D")))
    assert call.image == ImageSource(data=jpeg) and call.context == {"version": "beta", "param": "image_base64"}
    assert (call.options.min_side, call.options.max_pixels) == (100, 4096 * 4096)
    call = dialect.parse(incoming("/facepp/cardpp/v1/ocrbankcard", query=b"image_url=https://example.com/a.jpg"))
    assert call.image == ImageSource(url="https://example.com/a.jpg") and call.context["version"] == "v1"
    with pytest.raises(VendorError) as info:
        dialect.parse(incoming())
    assert (info.value.code, info.value.detail) == ("MISSING_ARGUMENTS", "image_url, image_file, image_base64")
    with pytest.raises(VendorError) as info:
        dialect.parse(incoming(query=b"image_base64=%2F9j_4A"))
    assert (info.value.code, info.value.detail) == ("BAD_ARGUMENTS", "image_base64")


def test_authenticate():
    dialect = facepp.create(SETTINGS, allow_unsigned=False)
    assert dialect.authenticate(incoming(query=f"api_key={KEY}&api_secret={SECRET}".encode()), 0) == KEY
    for query, code, detail in [
        (f"api_key={KEY}&api_secret=wrong".encode(), "AUTHENTICATION_ERROR", None),
        (f"api_key=unknown&api_secret={SECRET}".encode(), "AUTHENTICATION_ERROR", None),
        (f"api_secret={SECRET}".encode(), "MISSING_ARGUMENTS", "api_key"),
        (f"api_key={KEY}".encode(), "MISSING_ARGUMENTS", "api_secret"),
    ]:
        with pytest.raises(VendorError) as info:
            dialect.authenticate(incoming(query=query), 0)
        assert info.value.code == code and (detail is None or info.value.detail == detail)
    disabled = facepp.create({**SETTINGS, "disabled_keys": [KEY]}, allow_unsigned=False)
    with pytest.raises(VendorError) as info:
        disabled.authenticate(incoming(query=f"api_key={KEY}&api_secret={SECRET}".encode()), 0)
    assert info.value.code == "AUTHORIZATION_ERROR"
    body = json.loads(disabled.render_error(info.value, "r").body)
    assert body["error_message"] == "AUTHORIZATION_ERROR:Denied by Admin"
    assert facepp.create({}, allow_unsigned=True).authenticate(incoming(), 0) is None
    with pytest.raises(VendorError):
        facepp.create({}, allow_unsigned=False).authenticate(incoming(), 0)


# --- rendering -------------------------------------------------------------------------------


def _render(reading, version):
    dialect = facepp.create({}, True)
    request_id = dialect.new_request_id()
    call = EngineCall(image=ImageSource(data=b"x"), options=ReadOptions(), context={"version": version})
    response = dialect.render(call, reading, request_id, 215.7)
    assert response.status_code == 200
    body = json.loads(response.body)
    assert body["request_id"] == request_id and REQUEST_ID.match(request_id)
    assert body["time_used"] == 215 and isinstance(body["image_id"], str)
    return body["bank_cards"]


def test_render_beta_and_v1():
    reading = make_reading("6225760088888888")
    bound = {
        "left_top": {"x": 150, "y": 140},
        "right_top": {"x": 1130, "y": 150},
        "right_bottom": {"x": 1122, "y": 760},
        "left_bottom": {"x": 142, "y": 752},
    }
    assert _render(reading, "beta") == [{"bound": bound, "number": "6225760088888888"}]
    assert _render(reading, "v1") == [
        {"bound": bound, "number": "6225760088888888", "bank": "招商银行", "organization": ["union"]}
    ]
    visa = BankInfo(None, None, None, None, None, "Visa")
    assert _render(make_reading(bank=visa), "v1")[0]["organization"] == ["visa"]
    card = _render(make_reading(bank=None), "v1")[0]
    assert (card["bank"], card["organization"]) == ("null", [])


@pytest.mark.parametrize(
    "exc, status, message",
    [
        (VendorError("MISSING_ARGUMENTS", "api_key"), 400, "MISSING_ARGUMENTS: api_key"),
        (VendorError("BAD_ARGUMENTS", "image_base64"), 400, "BAD_ARGUMENTS:image_base64"),
        (VendorError("AUTHENTICATION_ERROR", "secret mismatch"), 401, "AUTHENTICATION_ERROR"),
        (VendorError("AUTHORIZATION_ERROR", "anything"), 403, "AUTHORIZATION_ERROR:Denied by Admin"),
        (VendorError("NOT_A_CODE"), 500, "INTERNAL_ERROR"),
        (gw.BadBase64Error(), 400, "BAD_ARGUMENTS:image_file"),
        (gw.ImageTooLargeBytesError(), 400, "IMAGE_FILE_TOO_LARGE:image_file"),
        (gw.UnsupportedFormatError("gif"), 400, "IMAGE_ERROR_UNSUPPORTED_FORMAT:image_file"),
        (gw.FetchTooLargeError("big"), 400, "IMAGE_FILE_TOO_LARGE:image_url"),
        (gw.FetchTimeoutError("slow"), 412, "IMAGE_DOWNLOAD_TIMEOUT"),
        (gw.FetchForbiddenError("private"), 400, "INVALID_IMAGE_URL"),
        (gw.FetchError("404"), 400, "INVALID_IMAGE_URL"),
        (gw.EngineBusyError(), 403, "CONCURRENCY_LIMIT_EXCEEDED"),
        (gw.RateLimitedError(), 403, "CONCURRENCY_LIMIT_EXCEEDED"),
        (gw.RouteNotFoundError(), 404, "API_NOT_FOUND"),
        (gw.ShuttingDownError(), 500, "INTERNAL_ERROR"),
        (engine_errors.ImageDecodeError(), 400, "IMAGE_ERROR_UNSUPPORTED_FORMAT:image_file"),
        (engine_errors.ImageTooLargeError(), 400, "INVALID_IMAGE_SIZE:image_file"),
        (engine_errors.ImageTooSmallError(), 400, "INVALID_IMAGE_SIZE:image_file"),
        (engine_errors.EngineError(), 500, "INTERNAL_ERROR"),
        (RuntimeError("bug"), 500, "INTERNAL_ERROR"),
    ],
)
def test_error_table(exc, status, message):
    dialect = facepp.create({}, True)
    request_id = dialect.new_request_id()
    response = dialect.render_error(exc, request_id, None)
    body = json.loads(response.body)
    assert (response.status_code, body["error_message"]) == (status, message)
    assert body["request_id"] == request_id and isinstance(body["time_used"], int)
    assert set(body) == {"error_message", "request_id", "time_used"}


def test_error_param_names_the_field_that_held_the_image():
    dialect = facepp.create({}, True)
    req = incoming(query=b"image_base64=AAAA&image_url=https://example.com/a.jpg")
    body = json.loads(dialect.render_error(engine_errors.ImageTooSmallError(), "r", req).body)
    assert body["error_message"] == "INVALID_IMAGE_SIZE:image_base64"


@pytest.mark.parametrize(
    "exc", [engine_errors.NoCardFoundError(), engine_errors.NumberUnreadableError(), engine_errors.ImageBlurredError()]
)
def test_no_card_is_an_empty_list(exc):
    response = facepp.create({}, True).render_error(exc, "1470378968,c6f50ec6-49bd-4838-9923-11db04c40f8d")
    body = json.loads(response.body)
    assert response.status_code == 200 and body["bank_cards"] == []
    assert body["request_id"] == "1470378968,c6f50ec6-49bd-4838-9923-11db04c40f8d"


def test_oversize_body_is_plain_text():
    response = facepp.create({}, True).render_error(gw.BodyTooLargeError(), "r")
    assert response.status_code == 413 and response.body == b"Request Entity Too Large"
    assert response.headers["content-type"].startswith("text/plain")


def test_routes_and_owned_paths():
    dialect = facepp.create({}, True)
    paths = {path for path, _ in dialect.routes()}
    assert paths == {
        "/cardpp/beta/ocrbankcard", "/cardpp/v1/ocrbankcard",
        "/facepp/cardpp/beta/ocrbankcard", "/facepp/cardpp/v1/ocrbankcard",
    }
    assert dialect.owns_path("/cardpp/v2/ocrbankcard") and dialect.owns_path("/facepp/facepp/v3/detect")
    assert not dialect.owns_path("/cardppx") and not dialect.owns_path("/v2/p/ocr/bankcard")


def test_fields_are_parsed_once_per_request(monkeypatch):
    calls = []
    real_parse = facepp.parse_fields
    monkeypatch.setattr(facepp, "parse_fields", lambda req: calls.append(req) or real_parse(req))
    dialect = facepp.create(SETTINGS, allow_unsigned=False)
    body = f"api_key={KEY}&api_secret={SECRET}&image_base64=R0lGODlh".encode()
    req = incoming(content_type="application/x-www-form-urlencoded", body=body)
    assert dialect.authenticate(req, 0) == KEY
    dialect.parse(req)
    dialect.render_error(gw.UnsupportedFormatError(), "r", req)  # names the image field from the same parse
    assert len(calls) == 1
    other = incoming(content_type="application/x-www-form-urlencoded", body=body)
    dialect.authenticate(other, 0)
    assert len(calls) == 2  # kept per request, never shared between requests


def test_urlencoded_bodies_parse_as_parse_qsl_parses_them():
    """parse_form unescapes with a C decoder where parse_qsl takes milliseconds; the fields must
    come out the same, malformed escapes and backslashes included."""
    import random
    from urllib.parse import parse_qsl, quote_plus, urlencode

    rng = random.Random(7)
    image = base64.b64encode(bytes(rng.randrange(256) for _ in range(3000))).decode()
    bodies = [
        urlencode({"api_key": KEY, "image_base64": image}),
        urlencode({"a b": "c+d", "e": "%2B literal", "f": image, "g": "back\\slash \\x41 \\"}),
        "x=%252B&y=%%2B&z=%2b%2f%3d&w=%41%zz&&=v&k&k2=&t=%4&u=%",
        "s=\\%41&n=\\x41%41&m=%5C%5Cx41",
        "name=" + quote_plus("中文 value", encoding="utf-8") + "&b64=" + image.replace("+", "%2B"),
    ]
    alphabet = "ab%+=&\\x4F"
    bodies += ["".join(rng.choice(alphabet) for _ in range(40)) for _ in range(300)]
    bodies += ["&".join(f"k{i}=" + quote_plus("".join(chr(rng.randrange(256)) for _ in range(20)), encoding="latin-1") for i in range(20)) for _ in range(20)]
    for body in bodies:
        expected = [(k, v.encode("latin-1")) for k, v in parse_qsl(body, keep_blank_values=True, encoding="latin-1")]
        assert facepp.parse_form(body.encode("latin-1")) == expected, body


def test_error_code_for_names_the_code_the_caller_gets():
    assert facepp.error_code_for(gw.UnsupportedFormatError()) == "IMAGE_ERROR_UNSUPPORTED_FORMAT"
    assert facepp.error_code_for(VendorError("MISSING_ARGUMENTS", "api_key")) == "MISSING_ARGUMENTS"
    assert facepp.error_code_for(VendorError("NOT_A_FACEPP_CODE")) == "INTERNAL_ERROR"
    assert facepp.error_code_for(gw.BodyTooLargeError()) == "Request Entity Too Large"
    assert facepp.error_code_for(RuntimeError("bug")) == "INTERNAL_ERROR"
    # answered as a 200 with no cards: no Face++ code, the neutral name keeps the cases apart
    assert facepp.error_code_for(engine_errors.NoCardFoundError()) == "NoCardFoundError"


def test_metrics_and_access_log_carry_the_facepp_code(caplog):
    client = TestClient(make_app(CheckingEngine()))
    data = {"api_key": KEY, "api_secret": SECRET, "image_base64": base64.b64encode(GIF).decode()}
    with caplog.at_level("INFO", logger="cardgate.access"):
        response = client.post("/cardpp/v1/ocrbankcard", data=data)
    assert response.status_code == 400
    assert response.json()["error_message"] == "IMAGE_ERROR_UNSUPPORTED_FORMAT:image_base64"
    access = [r.fields for r in caplog.records if r.name == "cardgate.access"]
    assert [line["code"] for line in access] == ["IMAGE_ERROR_UNSUPPORTED_FORMAT"]
    metrics = parse_text(client.get("/metrics").text)
    labels = frozenset({"dialect": "facepp", "status": "400", "code": "IMAGE_ERROR_UNSUPPORTED_FORMAT"}.items())
    assert metrics.get(("cardgate_requests_total", labels)) == 1


# --- end to end ----------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


def make_app(engine, **kwargs):
    return create_app({"facepp": SETTINGS}, engine, allow_unsigned=False,
                      dialects=[facepp.create(SETTINGS, allow_unsigned=False)], **kwargs)


@pytest.fixture
def engine():
    return CheckingEngine()


@pytest.fixture
def base_url(live_gateway, engine):
    return live_gateway(make_app(engine))


def fpp(base_url, key=KEY, secret=SECRET) -> FacePP:
    return FacePP(api_key=key, api_secret=secret, url=base_url)


def test_python_facepp_multipart_and_urlencoded(base_url, engine, tmp_path):
    jpeg = photo()
    path = tmp_path / "card.jpg"
    path.write_bytes(jpeg)
    app = fpp(base_url)
    result = app.engine.request("post", app.url + "/cardpp/v1/ocrbankcard", data={"image_file": str(path)})
    assert result["bank_cards"][0]["number"] == "6225760088888888"
    assert result["bank_cards"][0]["bank"] == "招商银行" and result["bank_cards"][0]["organization"] == ["union"]
    assert set(result["bank_cards"][0]["bound"]) == {"left_top", "right_top", "right_bottom", "left_bottom"}
    assert REQUEST_ID.match(result["request_id"]) and isinstance(result["time_used"], int)
    result = app.engine.request("post", app.url + "/cardpp/beta/ocrbankcard", data={"image_base64": base64.b64encode(jpeg).decode()})
    assert result["bank_cards"] == [{"bound": result["bank_cards"][0]["bound"], "number": "6225760088888888"}]
    assert engine.images == [jpeg, jpeg]


def test_python_facepp_errors(base_url, tmp_path):
    def call(data, path="/cardpp/v1/ocrbankcard", key=KEY, secret=SECRET):
        app = fpp(base_url, key, secret)
        files = {}
        for name, value in list(data.items()):
            if isinstance(value, bytes):  # python-facepp uploads image_file* values as file paths
                file = tmp_path / f"{name}.bin"
                file.write_bytes(value)
                files[name] = str(file)
        return app.engine.request("post", app.url + path, data={**data, **files})

    image = base64.b64encode(photo()).decode()
    with pytest.raises(fpp_errors.AuthenticationError):
        call({"image_base64": image}, secret="wrong")
    with pytest.raises(fpp_errors.AuthenticationError):
        call({"image_base64": image}, key="unknown-key")
    with pytest.raises(fpp_errors.MissingArguments) as info:
        call({})  # python-facepp adds its keys only to a non-empty data dict
    assert info.value.key == "api_key"
    with pytest.raises(fpp_errors.MissingArguments) as info:
        call({"image_url": ""})  # an empty field is a missing one
    assert info.value.key == "image_url, image_file, image_base64"
    with pytest.raises(fpp_errors.BadArguments) as info:
        call({"image_base64": "not*base64"})
    assert info.value.key == "image_base64"
    with pytest.raises(fpp_errors.ImageErrorUnsupportedFormat) as info:
        call({"image_file": truncated_jpeg()})
    assert info.value.param == "image_file"
    with pytest.raises(fpp_errors.ImageErrorUnsupportedFormat) as info:
        call({"image_base64": base64.b64encode(GIF).decode()})
    assert info.value.param == "image_base64"
    with pytest.raises(fpp_errors.InvalidImageSize) as info:
        call({"image_file": photo(90, 200)})  # shorter side under 100 px
    assert info.value.param == "image_file"
    with pytest.raises(fpp_errors.InvalidImageSize):
        call({"image_file": photo(4200, 120, ".png")})  # longer side over 4096 px
    with pytest.raises(fpp_errors.JSONDecodeError):  # the 413 is plain text
        call({"image_file": b"\xff\xd8\xff" + b"\x00" * (2 * 1024 * 1024)})
    with pytest.raises(fpp_errors.ApiNotFound):
        call({"image_base64": image}, path="/cardpp/v2/ocrbankcard")
    with pytest.raises(fpp_errors.ApiNotFound):
        call({"image_base64": image}, path="/facepp/v3/detect")


def test_hand_built_requests(base_url, engine):
    jpeg, other = photo(), photo(400, 260)
    # the old official PythonSDK: multipart, every part with `Content-Disposition: file`
    ctype, body = multipart([("file", "api_key", KEY.encode()), ("file", "api_secret", SECRET.encode()),
                             ("file", "image_file", jpeg)])
    response = httpx.post(base_url + "/cardpp/beta/ocrbankcard", content=body, headers={"Content-Type": ctype})
    assert response.status_code == 200 and response.json()["bank_cards"][0]["number"] == "6225760088888888"
    # requests.post(url, params=...): everything in the query string, under the prefix
    params = {"api_key": KEY, "api_secret": SECRET, "image_base64": base64.b64encode(jpeg).decode()}
    response = httpx.post(base_url + "/facepp/cardpp/v1/ocrbankcard", params=params)
    assert response.status_code == 200 and response.json()["bank_cards"][0]["organization"] == ["union"]
    # keys in the query, image in a form-data multipart body; file beats base64 beats url
    response = httpx.post(
        base_url + "/cardpp/v1/ocrbankcard",
        params={"api_key": KEY, "api_secret": SECRET},
        data={"image_base64": base64.b64encode(other).decode(), "image_url": "https://example.com/c.jpg"},
        files={"image_file": ("card.jpg", jpeg, "image/jpeg")},
    )
    assert response.status_code == 200
    response = httpx.post(
        base_url + "/cardpp/v1/ocrbankcard",
        data={"api_key": KEY, "api_secret": SECRET, "image_base64": base64.b64encode(other).decode(),
              "image_url": "https://example.com/c.jpg"},
    )
    assert response.status_code == 200
    assert engine.images == [jpeg, jpeg, jpeg, other]


def test_hand_built_errors(base_url):
    url = base_url + "/cardpp/v1/ocrbankcard"
    response = httpx.post(url, data={"api_key": KEY, "api_secret": SECRET}, files={"image_file": ("c.jpg", b"\xff" * (2 * 1024 * 1024 + 1))})
    assert response.status_code == 413 and response.text == "Request Entity Too Large"
    assert response.headers["content-type"].startswith("text/plain")
    response = httpx.post(url, data={"api_key": KEY, "api_secret": "nope", "image_url": "https://example.com/a.jpg"})
    body = response.json()
    assert response.status_code == 401 and body["error_message"] == "AUTHENTICATION_ERROR"
    assert REQUEST_ID.match(body["request_id"]) and isinstance(body["time_used"], int)
    response = httpx.post(url, data={"api_key": KEY, "api_secret": SECRET, "image_url": "http://127.0.0.1:1/a.jpg"})
    assert (response.status_code, response.json()["error_message"]) == (400, "INVALID_IMAGE_URL")
    response = httpx.get(url, params={"api_key": KEY, "api_secret": SECRET})
    assert (response.status_code, response.json()["error_message"]) == (404, "API_NOT_FOUND")


def test_no_card_found_answers_an_empty_list(live_gateway):
    base = live_gateway(make_app(CheckingEngine(error=engine_errors.NoCardFoundError())))
    response = httpx.post(base + "/cardpp/beta/ocrbankcard",
                          data={"api_key": KEY, "api_secret": SECRET, "image_base64": base64.b64encode(photo()).decode()})
    assert response.status_code == 200 and response.json()["bank_cards"] == []


def test_busy_engine_is_concurrency_limit_exceeded(live_gateway):
    engine = CheckingEngine(delay_s=0.5)
    app = create_app({"facepp": SETTINGS, "engine": {"threads": 1, "queue_size": 0}}, engine,
                     allow_unsigned=False, dialects=[facepp.create(SETTINGS, allow_unsigned=False)])
    base = live_gateway(app)
    image = base64.b64encode(photo()).decode()
    data = {"api_key": KEY, "api_secret": SECRET, "image_base64": image}
    first = threading.Thread(target=lambda: httpx.post(base + "/cardpp/v1/ocrbankcard", data=data, timeout=10))
    first.start()
    try:
        deadline = time.monotonic() + 5
        while not engine.calls and time.monotonic() < deadline:  # the only engine slot is taken
            time.sleep(0.01)
        app_client = fpp(base)
        with pytest.raises(fpp_errors.ConcurrencyLimitExceeded):
            app_client.engine.request("post", app_client.url + "/cardpp/v1/ocrbankcard", data={"image_base64": image})
    finally:
        first.join()


# --- image URLs (mocked transport, no network) -----------------------------------------------------


def url_client(handler) -> TestClient:
    async def public_resolver(host, port):
        return ["93.184.215.14"]

    app = make_app(CheckingEngine(), http_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
                   resolver=public_resolver)
    return TestClient(app)


def _post_url(client: TestClient, url: str = "https://images.example.com/card.jpg"):
    return client.post("/cardpp/v1/ocrbankcard", data={"api_key": KEY, "api_secret": SECRET, "image_url": url})


def test_image_url_fetched():
    jpeg = photo()
    with url_client(lambda request: httpx.Response(200, content=jpeg)) as client:
        response = _post_url(client)
    assert response.status_code == 200 and response.json()["bank_cards"][0]["number"] == "6225760088888888"


def test_image_url_failures():
    def timeout(request):
        raise httpx.ReadTimeout("slow", request=request)

    big = b"\xff\xd8\xff" + b"\x00" * (2 * 1024 * 1024 + 10)
    cases = [
        (lambda request: httpx.Response(404), 400, "INVALID_IMAGE_URL"),
        (timeout, 412, "IMAGE_DOWNLOAD_TIMEOUT"),
        (lambda request: httpx.Response(200, content=big), 400, "IMAGE_FILE_TOO_LARGE:image_url"),
        (lambda request: httpx.Response(200, content=GIF), 400, "IMAGE_ERROR_UNSUPPORTED_FORMAT:image_url"),
        (lambda request: httpx.Response(200, content=photo(60, 60)), 400, "INVALID_IMAGE_SIZE:image_url"),
    ]
    for handler, status, message in cases:
        with url_client(handler) as client:
            response = _post_url(client)
        assert (response.status_code, response.json()["error_message"]) == (status, message)
    with url_client(lambda request: httpx.Response(200)) as client:
        response = _post_url(client, "ftp://example.com/a.jpg")
    assert (response.status_code, response.json()["error_message"]) == (400, "INVALID_IMAGE_URL")


def test_python_facepp_reads_a_real_card_with_the_real_engine(live_gateway, tmp_path):
    engine, image, number = real_engine_and_card()
    app = fpp(live_gateway(make_app(engine)))
    path = tmp_path / "card.jpg"
    path.write_bytes(image)
    result = app.engine.request("post", app.url + "/cardpp/v1/ocrbankcard", data={"image_file": str(path)})
    assert [card["number"] for card in result["bank_cards"]] == [number]
