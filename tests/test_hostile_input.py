"""Hostile requests (issue #18): each answered in its vendor's own error, never a 5xx or a trace."""
from __future__ import annotations

import logging

import pytest

from gateway.body import MAX_JSON_DEPTH, json_too_deep

DEEP = b"[" * 10_000


@pytest.mark.parametrize(
    "path, content_type, status, code_of, code",
    [
        ("/tencent", "application/json", 200, lambda r: r.json()["Response"]["Error"]["Code"], "InvalidParameter"),
        ("/ocr/bankcard", "application/json", 200, lambda r: r.json()["code"], 3),
        ("/v2/project/ocr/bankcard", "application/json", 400, lambda r: r.json()["error_code"], "ModelArts.4105"),
        ("/hex/ocrapi/creditcardocr", "application/json", 200, lambda r: r.json()["errormsg"], "CREDITCARD_OCR_PREPROCESS_ERROR"),
    ],
)
def test_deeply_nested_json_is_the_vendors_bad_request(client, caplog, path, content_type, status, code_of, code):
    caplog.set_level(logging.INFO)
    response = client.post(path, content=DEEP, headers={"content-type": content_type})
    assert response.status_code == status
    assert code_of(response) == code
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    "body, too_deep",
    [
        (b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1), True),
        (b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH, False),
        (b"[]" * 10_000, False),  # many, but side by side
        (b'{"image": "' + b"[" * 10_000 + b'"}', False),  # brackets in a string are text
        (b'{"a": "\\"' + b"[" * 100 + b'"}', False),  # an escaped quote does not end the string
        (b'{"a": "\\\\", "b": ' + b"[" * 100 + b"]" * 100 + b"}", True),  # an escaped backslash does
    ],
)
def test_json_depth_counts_only_brackets_outside_strings(body, too_deep):
    assert json_too_deep(body) is too_deep
