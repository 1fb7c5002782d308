"""Form bodies are parsed in one place (core/body.py) for every dialect that takes them."""
from __future__ import annotations

import pytest

from adapters import facepp, myqcloud
from adapters.base import VendorError
from core.request import IncomingRequest
from core.body import BadFormError, TooManyPartsError, media_type, parse_multipart

BOUNDARY = "b0undary"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def multipart(*parts: tuple[str, bytes]) -> bytes:
    """Parts given as (Content-Disposition value, data)."""
    chunks = [f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data + b"\r\n"
              for disposition, data in parts]
    return b"".join(chunks) + f"--{BOUNDARY}--\r\n".encode()


def test_parts_are_named_by_content_disposition_whatever_its_type():
    body = multipart(('form-data; name="appid"', b"1250000000"), ('file; name="image"; filename="a.jpg"', b"\xff\xd8\x00\xff\xd9"),
                     ("form-data", b"no name: left out"))
    assert parse_multipart(body, CONTENT_TYPE) == [("appid", b"1250000000"), ("image", b"\xff\xd8\x00\xff\xd9")]


def test_malformed_bodies_and_too_many_parts_are_typed_errors():
    with pytest.raises(BadFormError):
        parse_multipart(b"--x\r\n", "multipart/form-data")  # no boundary
    with pytest.raises(TooManyPartsError):
        parse_multipart(multipart(*[(f'form-data; name="f{i}"', b"v") for i in range(3)]), CONTENT_TYPE, max_parts=2)
    with pytest.raises(BadFormError):
        parse_multipart(f"--{BOUNDARY}\r\nContent-Disposition form-data\r\n\r\nx".encode(), CONTENT_TYPE)


def test_media_type_is_lower_cased_with_its_parameters():
    assert media_type("Multipart/Form-Data; boundary=AbC") == ("multipart/form-data", {"boundary": "AbC"})
    assert media_type(None) == ("", {})


def request(body: bytes, content_type: str = CONTENT_TYPE) -> IncomingRequest:
    return IncomingRequest("POST", "/", b"/", b"", [("content-type", content_type)], body)


def test_facepp_and_myqcloud_read_the_same_parts_and_answer_their_own_codes():
    image = b"\xff\xd8\xff\xe0image\xff\xd9"
    body = multipart(('form-data; name="appid"', b"1250000000"), ('file; name="image"', image),
                     ('form-data; name="image_file"', image))
    assert myqcloud.read_form(request(body)).image_file == image
    assert facepp.parse_fields(request(body)).raw("image_file") == image
    with pytest.raises(VendorError) as too_many:
        myqcloud.read_form(request(multipart(*[(f'form-data; name="f{i}"', b"v") for i in range(myqcloud.MAX_PARTS + 1)])))
    assert too_many.value.code == "21"
    for read, code in ((myqcloud.read_form, "3"), (facepp.parse_fields, "BAD_ARGUMENTS")):
        with pytest.raises(VendorError) as refused:
            read(request(b"--x\r\n", "multipart/form-data"))
        assert refused.value.code == code
