"""Reports over comparison records (shadow mode or the offline compare): a summary, JSON and HTML.

The summary: agreement per field, errors and failures per side, latency per
side, and, when records carry the truth (--labels), each side's score. The
HTML page is self-contained (no scripts, no external assets); numbers in it are
the records' masked ones. Thumbnails appear only when the caller passes them.
"""
from __future__ import annotations

import html
import json
import os
import statistics
from collections import Counter

from core.wire import FIELDS


def side_names(records: list[dict]) -> list[str]:
    names: list[str] = []
    for record in records:
        for name in record.get("sides", {}):
            if name not in names:
                names.append(name)
    return names


def _rate(hits: int, total: int) -> float | None:
    return round(hits / total, 4) if total else None


def _latency(values: list[float]) -> dict:
    if not values:
        return {"count": 0}
    ordered = sorted(values)

    def pct(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 1)

    return {"count": len(values), "mean": round(statistics.fmean(values), 1), "p50": pct(0.5), "p95": pct(0.95), "max": round(ordered[-1], 1)}


def summarize(records: list[dict]) -> dict:
    names = side_names(records)
    fields = {}
    for name in FIELDS:
        results = [r["fields"].get(name) for r in records if r.get("fields", {}).get(name) is not None]
        fields[name] = {"compared": len(results), "agree": sum(results), "rate": _rate(sum(results), len(results))}
    compared = [r["agree"] for r in records if r.get("agree") is not None]
    sides = {}
    for name in names:
        data = [r["sides"][name] for r in records if name in r.get("sides", {})]
        codes = Counter(d["error_code"] for d in data if d.get("error_code"))
        failures = Counter((d["failure"] or "").split(" ")[0].rstrip(":") for d in data if d.get("failure"))
        side = {
            "answers": len(data),
            "errors": sum(codes.values()),
            "error_codes": dict(codes.most_common()),
            "failures": sum(failures.values()),
            "failure_reasons": dict(failures.most_common()),
            "latency_ms": _latency([d["latency_ms"] for d in data if not d.get("failure") and d.get("latency_ms") is not None]),
        }
        scored = [r["scores"][name] for r in records if name in (r.get("scores") or {})]
        if scored:
            numbers = [s["number"] for s in scored]
            expiries = [s["expiry"] for s in scored if s.get("expiry") is not None]
            side["score"] = {
                "labelled": len(scored),
                "number_right": sum(numbers),
                "number_accuracy": _rate(sum(numbers), len(numbers)),
                "expiry_labelled": len(expiries),
                "expiry_right": sum(expiries),
                "expiry_accuracy": _rate(sum(expiries), len(expiries)),
            }
        sides[name] = side
    return {
        "records": len(records),
        "dialects": sorted({r.get("dialect", "") for r in records}),
        "compared": len(compared),
        "agree": sum(compared),
        "agreement": _rate(sum(compared), len(compared)),
        "fields": fields,
        "sides": sides,
    }


def write_json(path: str, summary: dict, records: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump({"summary": summary, "records": records}, fh, ensure_ascii=False, indent=2)


# --- HTML -----------------------------------------------------------------------

_STYLE = """
body{font:14px system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f3f3f3}
td.bad{background:#fde2e2}
td.good{background:#e4f6e4}
td.na{color:#999}
code{font-size:13px}
img{max-width:160px}
"""


def _e(value) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        value = ", ".join(str(v) for v in value) if value else "(none)"
    return html.escape(str(value))


def _pct(rate) -> str:
    return "–" if rate is None else f"{rate * 100:.1f}%"


def render_html(summary: dict, records: list[dict], title: str, thumbnails: dict[str, str] | None = None) -> str:
    names = list(summary["sides"])
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(title)}</title><style>{_STYLE}</style></head><body>"]
    out.append(f"<h1>{_e(title)}</h1>")
    out.append(
        f"<p>{summary['records']} records ({_e(', '.join(summary['dialects']))}); "
        f"{summary['compared']} compared, all fields agree on {summary['agree']} ({_pct(summary['agreement'])}).</p>"
    )
    out.append("<h2>Agreement per field</h2><table><tr><th>field</th><th>compared</th><th>agree</th><th>rate</th></tr>")
    for name, data in summary["fields"].items():
        out.append(f"<tr><td>{_e(name)}</td><td>{data['compared']}</td><td>{data['agree']}</td><td>{_pct(data['rate'])}</td></tr>")
    out.append("</table><h2>Per side</h2><table><tr><th>side</th><th>answers</th><th>vendor errors</th>"
               "<th>failures</th><th>latency ms (mean / p50 / p95 / max)</th><th>score vs labels</th></tr>")
    for name in names:
        side = summary["sides"][name]
        lat = side["latency_ms"]
        latency = f"{lat['mean']} / {lat['p50']} / {lat['p95']} / {lat['max']}" if lat.get("count") else "–"
        errors = ", ".join(f"{code}: {n}" for code, n in side["error_codes"].items())
        failures = ", ".join(f"{reason}: {n}" for reason, n in side["failure_reasons"].items())
        score = side.get("score")
        scored = (f"number {score['number_right']}/{score['labelled']} ({_pct(score['number_accuracy'])}), "
                  f"expiry {score['expiry_right']}/{score['expiry_labelled']} ({_pct(score['expiry_accuracy'])})") if score else "–"
        out.append(f"<tr><td>{_e(name)}</td><td>{side['answers']}</td><td>{side['errors']} {_e(errors)}</td>"
                   f"<td>{side['failures']} {_e(failures)}</td><td>{latency}</td><td>{_e(scored)}</td></tr>")
    out.append("</table><h2>Records</h2><table><tr><th>id</th>")
    if thumbnails:
        out.append("<th>image</th>")
    out.append("<th>agree</th><th>side</th><th>status</th><th>latency ms</th>")
    out.extend(f"<th>{_e(name)}</th>" for name in FIELDS)
    out.append("</tr>")
    for record in records:
        sides = [n for n in names if n in record.get("sides", {})]
        span = max(1, len(sides)) + (1 if "truth" in record else 0)
        for i, name in enumerate(sides):
            data = record["sides"][name]
            out.append("<tr>")
            if i == 0:
                agree = record.get("agree")
                extra = f"<br><small>{_e(record.get('answered_by'))}</small>" if record.get("answered_by") else ""
                out.append(f"<td rowspan='{span}'><code>{_e(record.get('id'))}</code>{extra}</td>")
                if thumbnails:
                    uri = thumbnails.get(record.get("id", ""))
                    out.append(f"<td rowspan='{span}'>" + (f"<img src='{_e(uri)}' alt=''>" if uri else "") + "</td>")
                css = "na" if agree is None else ("good" if agree else "bad")
                out.append(f"<td rowspan='{span}' class='{css}'>{'–' if agree is None else ('yes' if agree else 'no')}</td>")
            out.append(f"<td>{_e(name)}</td><td>{_e(data.get('status'))}{(' ' + _e(data['failure'])) if data.get('failure') else ''}</td>"
                       f"<td>{_e(data.get('latency_ms'))}</td>")
            for field in FIELDS:
                agree = record.get("fields", {}).get(field)
                css = "na" if agree is None else ("good" if agree else "bad")
                out.append(f"<td class='{css}'>{_e(data.get(field))}</td>")
            out.append("</tr>")
        if "truth" in record:
            truth = record["truth"]
            out.append("<tr><td>truth</td><td></td><td></td>"
                       f"<td>{_e(truth.get('number'))}</td><td>{_e(truth.get('expiry'))}</td><td colspan='4'></td></tr>")
    out.append("</table></body></html>")
    return "\n".join(out)


def write_report(out_dir: str, records: list[dict], title: str, thumbnails: dict[str, str] | None = None) -> tuple[str, str]:
    """report.json and report.html in `out_dir`; returns their paths."""
    os.makedirs(out_dir, exist_ok=True)
    summary = summarize(records)
    json_path, html_path = os.path.join(out_dir, "report.json"), os.path.join(out_dir, "report.html")
    write_json(json_path, summary, records)
    with open(html_path, "w", encoding="utf-8") as fh:
        fh.write(render_html(summary, records, title, thumbnails))
    return json_path, html_path
