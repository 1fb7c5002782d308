"""`cardgate compare` and `cardgate report`: two gateways (FakeEngine) play the two endpoints."""
from __future__ import annotations

import json

import pytest

from gateway.app import create_app
from gateway.cli import main
from gateway.migrate.fields import comparison_record
from gateway.migrate.report import summarize
from core.wire import Outcome, Reply, mask
from tests.fakes import FakeEngine, fake_card_image, make_reading
from tests.test_migrate_support import DIALECTS, closed_port_url, with_check_digit

NUMBERS = [with_check_digit(body) for body in ("622576008812345", "621700001003038545", "622848033034644")]


class OffByOneEngine(FakeEngine):
    """Reads the number from the image, but gets the last digit wrong on one card."""

    def __init__(self, wrong: str):
        super().__init__(make_reading(), number_from_image=True)
        self.wrong = wrong

    def read(self, image, options):
        reading = super().read(image, options)
        if reading.number == self.wrong:
            reading.number = reading.number[:-1] + str((int(reading.number[-1]) + 1) % 10)
        return reading


def write_credentials(path, dialect: str, a: dict, b: dict) -> str:
    def table(values: dict) -> str:
        return "".join(f'{key} = "{value}"\n' for key, value in values.items())

    path.write_text(f"[a]\n{table(a)}[b]\n{table(b)}", encoding="utf-8")
    return str(path)


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "cards"
    (folder / "sub").mkdir(parents=True)
    paths = [folder / "c1.jpg", folder / "c2.jpg", folder / "sub" / "c3.jpg"]
    for path, number in zip(paths, NUMBERS):
        path.write_bytes(fake_card_image(number))
    (folder / "notes.txt").write_text("not an image")
    labels = folder / "labels.tsv"
    labels.write_text(
        "file\tkind\tcard_number\texpiry\n"
        f"c1.jpg\tfull_card\t{NUMBERS[0]}\t08/22\n"
        f"c2.jpg\tfull_card\t{NUMBERS[1]}\t\n"
        f"sub/c3.jpg\tfull_card\t{NUMBERS[2]}\t09/30\n"
        f"c1.jpg\tnumber_segment\t1234\t\n",
        encoding="utf-8",
    )
    return folder, labels


def test_compare_tencent_with_labels(tmp_path, live_gateway, images, capsys):
    folder, labels = images
    a = live_gateway(create_app({"tencent": {"credentials": {"AKIDA": "secret-a"}}}, FakeEngine(number_from_image=True), allow_unsigned=False))
    b = live_gateway(create_app({"tencent": {"credentials": {"AKIDB": "secret-b"}}}, OffByOneEngine(NUMBERS[1]), allow_unsigned=False))
    creds = write_credentials(tmp_path / "creds.toml", "tencent", {"secret_id": "AKIDA", "secret_key": "secret-a"},
                              {"secret_id": "AKIDB", "secret_key": "secret-b"})
    out = tmp_path / "report"
    rc = main(["compare", "--dialect", "tencent", "--a", a, "--b", b, "--credentials", creds,
               "--labels", str(labels), "--out", str(out), str(folder)])
    assert rc == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"side a ({a.split('//')[1]}): 3 of 3 read"
    assert err[1] == f"side b ({b.split('//')[1]}): 3 of 3 read"
    assert err[2].startswith("3 images, all fields agree on 2; report: ")

    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    summary, records = report["summary"], report["records"]
    assert [r["id"] for r in records] == ["c1.jpg", "c2.jpg", "sub/c3.jpg"]  # relative to the images' folder
    assert summary["records"] == 3 and summary["agree"] == 2
    assert summary["fields"]["number"] == {"compared": 3, "agree": 2, "rate": round(2 / 3, 4)}
    assert summary["fields"]["error_code"]["agree"] == 3
    assert summary["sides"]["a"]["score"]["number_right"] == 3
    assert summary["sides"]["b"]["score"]["number_right"] == 2
    # make_reading's expiry is 08/22 whatever the card: right on c1 only (c2 has no labelled expiry)
    assert summary["sides"]["a"]["score"]["expiry_labelled"] == 2
    assert summary["sides"]["a"]["score"]["expiry_right"] == 1
    assert summary["sides"]["a"]["latency_ms"]["count"] == 3

    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Agreement per field" in html and "<img" not in html
    for number in NUMBERS:
        assert number not in html and number not in (out / "report.json").read_text(encoding="utf-8")
    assert mask(NUMBERS[1]) in html


@pytest.mark.parametrize("dialect", list(DIALECTS))
def test_compare_signs_every_dialect(tmp_path, live_gateway, images, dialect):
    """Each dialect's request_for_image passes the real verifier of a gateway holding the keys."""
    folder, _ = images
    engine = FakeEngine(number_from_image=True)
    url = live_gateway(create_app({dialect: DIALECTS[dialect]["vendor"]}, engine, allow_unsigned=False))
    shadow_keys = DIALECTS[dialect]["shadow"]
    creds = write_credentials(tmp_path / "creds.toml", dialect, shadow_keys, shadow_keys)
    out = tmp_path / "out"
    assert main(["compare", "--dialect", dialect, "--a", url, "--b", url, "--credentials", creds,
                 "--out", str(out), str(folder / "c1.jpg")]) == 0
    record = json.loads((out / "report.json").read_text())["records"][0]
    assert record["agree"] is True, record
    assert record["sides"]["a"]["number"] == mask(NUMBERS[0])
    assert len(engine.calls) == 2


def test_compare_counts_an_unreachable_side_and_exits_1(tmp_path, live_gateway, images, capsys):
    folder, _ = images
    url = live_gateway(create_app({"hex": {}}, FakeEngine(number_from_image=True)))
    down = closed_port_url()
    out = tmp_path / "out"
    assert main(["compare", "--dialect", "hex", "--a", url, "--b", down, "--out", str(out), str(folder)]) == 1
    summary = json.loads((out / "report.json").read_text())["summary"]
    assert summary["sides"]["b"]["failures"] == 3 and summary["sides"]["b"]["failure_reasons"] == {"connect": 3}
    assert summary["sides"]["a"]["failures"] == 0 and summary["compared"] == 0
    err = capsys.readouterr().err.splitlines()
    assert err[:2] == [f"side a ({url.split('//')[1]}): 3 of 3 read", f"side b ({down.split('//')[1]}): 0 of 3 read; connect 3"]
    assert err[2].startswith("cardgate compare: side b read none of the 3 images; report: ")


def test_compare_exits_1_when_every_answer_of_a_side_is_a_signature_failure(tmp_path, live_gateway, images, capsys):
    folder, _ = images
    a = live_gateway(create_app({"tencent": {"credentials": {"AKIDA": "secret-a"}}}, FakeEngine(number_from_image=True), allow_unsigned=False))
    b = live_gateway(create_app({"tencent": {"credentials": {"AKIDB": "secret-b"}}}, FakeEngine(number_from_image=True), allow_unsigned=False))
    creds = write_credentials(tmp_path / "creds.toml", "tencent", {"secret_id": "AKIDA", "secret_key": "secret-a"},
                              {"secret_id": "AKIDB", "secret_key": "not-secret-b"})
    rc = main(["compare", "--dialect", "tencent", "--a", a, "--b", b, "--credentials", creds, "--out", str(tmp_path / "out"), str(folder)])
    assert rc == 1
    err = capsys.readouterr().err.splitlines()
    assert err[1] == f"side b ({b.split('//')[1]}): 0 of 3 read; AuthFailure.SignatureFailure 3"
    assert "side b read none of the 3 images" in err[2]


@pytest.mark.parametrize("flag", ["--a", "--b"])
def test_compare_refuses_a_url_without_a_scheme(tmp_path, images, capsys, flag):
    folder, _ = images
    urls = {"--a": "http://127.0.0.1:1", "--b": "http://127.0.0.1:1", flag: "127.0.0.1:8080"}
    assert main(["compare", "--dialect", "hex", *(x for kv in urls.items() for x in kv), "--out", str(tmp_path / "out"), str(folder)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"cardgate compare: {flag} '127.0.0.1:8080' is not an http(s) URL (e.g. http://127.0.0.1:8080)"
    ]
    assert not (tmp_path / "out").exists()


def test_compare_refuses_an_image_path_that_does_not_exist(tmp_path, live_gateway, images, capsys):
    folder, _ = images
    engine = FakeEngine(number_from_image=True)
    url = live_gateway(create_app({"hex": {}}, engine))
    missing = tmp_path / "nope.jpg"
    assert main(["compare", "--dialect", "hex", "--a", url, "--b", url, "--out", str(tmp_path / "out"), str(folder), str(missing)]) == 2
    assert capsys.readouterr().err.splitlines() == [f"cardgate compare: {missing}: no such file or folder"]
    assert engine.calls == [] and not (tmp_path / "out").exists()  # nothing was sent


def test_compare_with_thumbnails(tmp_path, live_gateway):
    import cv2
    import numpy as np

    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), np.full((300, 480, 3), 200, np.uint8))
    url = live_gateway(create_app({"hex": {}}, FakeEngine()))
    out = tmp_path / "out"
    assert main(["compare", "--dialect", "hex", "--a", url, "--b", url, "--thumbnails", "--out", str(out), str(photo)]) == 0
    assert "data:image/jpeg;base64," in (out / "report.html").read_text()


def test_compare_refuses_missing_credentials(tmp_path, images, capsys):
    folder, _ = images
    assert main(["compare", "--dialect", "huawei", "--a", "http://x", "--b", "http://y", str(folder)]) == 2
    assert "side a needs" in capsys.readouterr().err


def test_report_from_shadow_records(tmp_path, capsys):
    ok = Reply(status=200, latency_ms=12.0)
    records = [
        comparison_record("tencent", "shadow", "r1", [("upstream", Outcome(number=NUMBERS[0], expiry="08/22"), ok),
                                                       ("local", Outcome(number=NUMBERS[0], expiry="08/22"), ok)], answered_by="upstream"),
        comparison_record("tencent", "shadow", "r2", [("upstream", Outcome(number=NUMBERS[1]), ok),
                                                       ("local", Outcome(number=NUMBERS[2]), ok)], answered_by="upstream"),
        comparison_record("tencent", "shadow", "r3", [("upstream", Outcome(failure="timeout"), Reply(None, failure="timeout")),
                                                       ("local", Outcome(error_code="FailedOperation.NoBankCardError"), ok)]),
        comparison_record("hex", "shadow", "r4", [("upstream", Outcome(number=NUMBERS[0]), ok), ("local", Outcome(number=NUMBERS[0]), ok)]),
    ]
    path = tmp_path / "shadow.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + "{cut short", encoding="utf-8")
    out = tmp_path / "report"
    assert main(["report", str(path), "--out", str(out), "--dialect", "tencent"]) == 0
    summary = json.loads((out / "report.json").read_text())["summary"]
    assert summary["records"] == 3 and summary["compared"] == 2 and summary["agree"] == 1
    assert summary["fields"]["number"] == {"compared": 2, "agree": 1, "rate": 0.5}
    assert summary["sides"]["upstream"]["failure_reasons"] == {"timeout": 1}
    assert summary["sides"]["local"]["error_codes"] == {"FailedOperation.NoBankCardError": 1}
    html = (out / "report.html").read_text()
    assert "r2" in html and "timeout" in html
    assert all(number not in html for number in NUMBERS)


def test_report_of_a_missing_file_says_so(tmp_path, capsys):
    assert main(["report", str(tmp_path / "none.jsonl")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_report_of_a_file_without_records_says_so(tmp_path, capsys):
    """A labels file or a log given by mistake: one line and exit 2, not an empty report; a records
    file nothing was written to yet is an empty report."""
    labels = tmp_path / "labels.tsv"
    labels.write_text("file\tkind\tcard_number\texpiry\ncard.jpg\tfull_card\t6225760088888883\t\n")
    assert main(["report", str(labels), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "labels.tsv: no comparison records in it" in err
    assert not (tmp_path / "r").exists()
    empty = tmp_path / "shadow.jsonl"
    empty.write_text("\n")
    assert main(["report", str(empty), "--out", str(tmp_path / "r")]) == 0


def test_summary_of_no_records():
    summary = summarize([])
    assert summary["records"] == 0 and summary["agreement"] is None


def test_compare_defaults_to_the_labelled_images(tmp_path, live_gateway, images):
    _, labels = images
    url = live_gateway(create_app({"hex": {}}, FakeEngine(number_from_image=True)))
    out = tmp_path / "out"
    assert main(["compare", "--dialect", "hex", "--a", url, "--b", url, "--labels", str(labels), "--out", str(out)]) == 0
    summary = json.loads((out / "report.json").read_text())["summary"]
    assert summary["records"] == 3  # the number_segment row is not a card
    assert summary["sides"]["a"]["score"]["number_accuracy"] == 1.0


@pytest.mark.parametrize("option, value, says", [
    ("--timeout", "0", "'0' is not a number of seconds (more than 0)"),
    ("--timeout", "-1", "'-1' is not a number of seconds (more than 0)"),
    ("--timeout", "nan", "'nan' is not a number of seconds (more than 0)"),
    ("--concurrency", "0", "'0' is not a number of images in flight (1 or more)"),
])
def test_compare_refuses_a_timeout_or_concurrency_that_cannot_work(tmp_path, capsys, option, value, says):
    """A zero or negative timeout timed every request out (exit 1, as if both sides were down)."""
    with pytest.raises(SystemExit) as exited:
        main(["compare", "--dialect", "hex", "--a", "http://127.0.0.1:1", "--b", "http://127.0.0.1:1",
              option, value, "--out", str(tmp_path / "out"), str(tmp_path)])
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines() == [f"cardgate compare: argument {option}: {says} (see cardgate compare --help)"]
    assert not (tmp_path / "out").exists()


def test_compare_reads_baidu_with_an_access_token_the_upstream_issued(tmp_path, live_gateway, images):
    """Baidu's other credential: a token from the upstream's own OAuth endpoint, sent as
    ?access_token= instead of a bce-auth-v1 signature; a token it did not issue is refused (110)."""
    import httpx

    folder, _ = images
    app = {"apps": {"10003": {"api_key": "oauth-key", "secret_key": "oauth-secret"}}}
    url = live_gateway(create_app({"baidu": app}, FakeEngine(number_from_image=True), allow_unsigned=False))
    token = httpx.post(url + "/oauth/2.0/token", params={"grant_type": "client_credentials", "client_id": "oauth-key",
                                                          "client_secret": "oauth-secret"}).json()["access_token"]
    forged = token.replace(token.split(".")[1], "0" * 32)
    creds = write_credentials(tmp_path / "creds.toml", "baidu", {"access_token": token}, {"access_token": forged})
    out = tmp_path / "out"
    assert main(["compare", "--dialect", "baidu", "--a", url, "--b", url, "--credentials", creds,
                 "--out", str(out), str(folder / "c1.jpg")]) == 1
    sides = json.loads((out / "report.json").read_text())["records"][0]["sides"]
    assert sides["a"]["number"] == mask(NUMBERS[0]) and sides["a"]["error_code"] is None
    assert sides["b"]["error_code"] == "110"
