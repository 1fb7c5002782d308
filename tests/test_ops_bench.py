"""bench/: its signed requests are accepted by every dialect and a short run reports its figures."""
from __future__ import annotations

import json
import os
import re

import pytest

from bench import run as bench_run
from gateway.app import create_app
from tests.test_huawei_support import photo
from tests.test_ops_gateway import SIGNED, FakeEngine

CONFIG_TOML = """
[tencent.credentials]
AKIDBENCH = "tencent-secret"
[huawei.credentials]
HWAKBENCH = "huawei-secret"
[facepp.credentials]
fpp-key = "fpp-secret"
[myqcloud.apps.1250000000]
secret_id = "AKIDMYQ"
secret_key = "myq-secret"
[hex]
token = "hex-token"
[baidu.apps.12345678]
access_key = "baidu-ak"
secret_access_key = "baidu-sk"
[alibaba.credentials]
LTAIBENCH = "alibaba-secret"
"""


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(photo(480, 300))
    (folder / "b.png").write_bytes(photo(400, 260, ".png"))
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_short_bench_run_against_a_signed_gateway(live_gateway, images, tmp_path, capsys):
    app = create_app({**SIGNED, "metrics": {"server_timing": True}}, FakeEngine(), allow_unsigned=False)
    url = live_gateway(app)
    config = tmp_path / "cardgate.toml"
    config.write_text(CONFIG_TOML)
    assert bench_run.main(["--url", url, "--images", str(images), "--concurrency", "2", "--seconds", "0.6",
                           "--config", str(config), "--json", "--rapidocr"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["images"] == 2
    assert f"{os.cpu_count()} CPUs" in report["cpu"]  # figures carry the machine they came from
    overall = report["overall"]
    assert overall["requests"] > 5 and overall["ok"] == overall["requests"], overall["codes"]
    assert set(report["per_dialect"]) == {"tencent", "huawei", "facepp", "myqcloud", "hex", "baidu", "alibaba"}
    assert all(s["ok"] > 0 for s in report["per_dialect"].values())
    assert overall["engine_mean_ms"] >= 0 and overall["overhead_end_to_end_p95_ms"] > 0
    metrics = report["server_metrics"]
    assert metrics["engine_reads"] == overall["requests"]
    assert 0 < metrics["overhead_p95_ms"] < 1000 and metrics["peak_rss_mib"] > 10
    assert "rapidocr" in report


def test_table_output_and_memory_of_a_process_tree(live_gateway, images, capsys):
    import os

    url = live_gateway(create_app({}, FakeEngine()))
    assert bench_run.main(["--url", url, "--images", str(images), "--concurrency", "1", "--seconds", "0.3",
                           "--dialects", "hex,huawei", "--pid", str(os.getpid())]) == 0
    out = capsys.readouterr().out
    assert "ALL" in out and "hex" in out and "tencent" not in out
    assert f"'{os.getpid()}'" in out  # this process's peak RSS


def test_histogram_quantile_interpolates_between_scrapes():
    name = "h"
    def sample(le, v):
        return ((f"{name}_bucket", frozenset({("le", le)})), v)
    before = dict([sample("0.001", 0), sample("0.01", 0), sample("+Inf", 0)])
    after = dict([sample("0.001", 50), sample("0.01", 100), sample("+Inf", 100)])
    assert bench_run.histogram_quantile(before, after, name, 0.5) == pytest.approx(0.001)
    assert bench_run.histogram_quantile(before, after, name, 0.95) == pytest.approx(0.001 + 0.009 * 0.9)


def test_baidu_without_a_bce_key_pair_is_sent_with_a_token_the_gateway_takes():
    from starlette.testclient import TestClient

    from bench.clients import Credentials, build_request, outcome

    config = {"baidu": {"apps": {"12345678": {"api_key": "baidu-api-key", "secret_key": "baidu-secret"}}}}
    creds = Credentials.from_config(config)
    assert creds.baidu is None and creds.baidu_token.endswith("-12345678")
    client = TestClient(create_app(config, FakeEngine(), allow_unsigned=False))
    method, path, headers, body = build_request("baidu", photo(480, 300), creds, "testserver")
    answer = client.request(method, path, headers=headers, content=body)
    assert outcome("baidu", answer.status_code, answer.content) == (True, "ok"), answer.text
    forged = Credentials(baidu_token=creds.baidu_token.replace(".2592000.", ".2592001."))
    method, path, headers, body = build_request("baidu", photo(480, 300), forged, "testserver")
    refused = client.request(method, path, headers=headers, content=body)
    assert outcome("baidu", refused.status_code, refused.content) == (False, "110")


# --- bench/soak.py ----------------------------------------------------------------------------------


class MarkedEngine(FakeEngine):
    """Reads the number marked in the photo (no mark: no card). `crossing`: once the soak's
    calibration is done, answers each read with the number of the read before it."""

    def __init__(self, photos: int, crossing: bool = False):
        super().__init__()
        self.number_from_image = True
        self.photos, self.crossing = photos, crossing

    def read(self, image, options):
        from engine.errors import NoCardFoundError
        from tests.fakes import number_in_image

        if number_in_image(image) is None:
            raise NoCardFoundError("no mark")
        if self.crossing and len(self.calls) > self.photos:
            image = self.calls[-1][0]
        return super().read(image, options)


def marked_photos(folder, count: int) -> list[str]:
    """Real JPEGs (every dialect's size checks pass) in `folder`, each with a distinct Luhn-valid
    number marked after its end; the numbers."""
    from tests.fakes import luhn_ok

    folder.mkdir()
    numbers = []
    for i in range(count):
        stem = f"62257600{i:07d}"
        numbers.append(next(stem + d for d in "0123456789" if luhn_ok(stem + d)))
        (folder / f"p{i}.jpg").write_bytes(photo(480, 300) + b"CARD:" + numbers[-1].encode())
    return numbers


@pytest.mark.parametrize("crossing", [False, True])
def test_a_short_soak_counts_crossed_answers(live_gateway, tmp_path, capsys, crossing):
    from bench import soak

    numbers = marked_photos(tmp_path / "photos", 4)
    app = create_app({**SIGNED, "engine": {"threads": 2, "queue_size": 2}}, MarkedEngine(4, crossing), allow_unsigned=False)
    url = live_gateway(app)
    config = tmp_path / "cardgate.toml"
    config.write_text(CONFIG_TOML)
    status = soak.main(["--url", url, "--config", str(config), "--images", str(tmp_path / "photos"), "--minutes", "0.03",
                        "--interval", "0.5", "--settle", "0", "--concurrency", "6", "--pid", str(os.getpid())])
    out = capsys.readouterr().out
    assert "calibration: 4 of 4 photos" in out
    requests = re.search(r"requests (\d+): read (\d+), busy (\d+), other refusals (\d+), unexpected 5xx (\d+), "
                         r"dropped (\d+), crossed (\d+), failing requests answered with a reading (\d+)", out)
    sent, read, busy, refused, errors, dropped, crossed, accepted = map(int, requests.groups())
    assert sent > 20 and refused > 0 and errors == dropped == accepted == 0, out
    assert f"worker {os.getpid()}: RSS start" in out
    if crossing:
        assert crossed > 0 and status == 1 and "bars: NOT MET" in out
        assert "crossed" in out and not any(number in out for number in numbers)  # examples masked
    else:
        assert crossed == 0 and read > 0, out
