"""deploy/grafana: the dashboard compose provisions asks Prometheus only for what /metrics exports."""
from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from gateway.metrics import GatewayMetrics, parse_text

ROOT = Path(__file__).resolve().parent.parent
GRAFANA = ROOT / "deploy/grafana"
DASHBOARD = GRAFANA / "dashboards/cardgate.json"

# Labels Prometheus adds to every scraped series (deploy/prometheus.yml), and a histogram's le.
ADDED_LABELS = {"instance", "job", "le"}
# PromQL words that are not metric names: operators, modifiers and aggregation clauses.
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset"}


def exported() -> dict[str, set[str]]:
    """Series name -> label names, as a gateway's /metrics renders them once it has served."""
    metrics = GatewayMetrics(runner=SimpleNamespace(running=0, queued=0, threads=1, queue_size=8))
    metrics.observe_request("hex", 200, "ok", 0.1, 0.01)
    metrics.observe_stage("engine", 0.05)
    names: dict[str, set[str]] = {}
    for name, labels in parse_text(metrics.render()):
        names.setdefault(name, set()).update(label for label, _ in labels)
    return names


def dashboard_exprs() -> list[str]:
    exprs = [target["expr"] for panel in json.loads(DASHBOARD.read_text())["panels"] for target in panel["targets"]]
    assert exprs, "the dashboard has no queries"
    return exprs


def names_and_labels(expr: str) -> tuple[set[str], set[str]]:
    """(metric names, label names) a PromQL expression uses. Enough PromQL for these queries:
    label matchers in braces, `by (...)` lists, range selectors, function calls."""
    labels: set[str] = set()
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string values may hold anything
    for matchers in re.findall(r"\{([^}]*)\}", text):
        labels.update(re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", matchers))
    text = re.sub(r"\{[^}]*\}", " ", text)
    for grouping in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", text):
        labels.update(name.strip() for name in grouping.split(",") if name.strip())
    text = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)  # [5m], [$__rate_interval]
    names = set(re.findall(r"(?<![\w.$])([A-Za-z_:][\w:]*)(?![\w:]|\s*\()", text)) - KEYWORDS
    return names, labels


def test_the_expression_reader_sees_names_and_labels():
    # The reader itself must be able to fail: a wrong name or label is seen as one.
    names, labels = names_and_labels(
        'histogram_quantile(0.95, sum by (dialect, le) (rate(foo_bucket{code!="ok", x=~"$d"}[$__rate_interval]))) / bar'
    )
    assert names == {"foo_bucket", "bar"} and labels == {"dialect", "le", "code", "x"}


@pytest.mark.parametrize("expr", dashboard_exprs())
def test_each_query_names_only_exported_metrics_and_labels(expr):
    series = exported()
    names, labels = names_and_labels(expr)
    assert names, expr
    unknown = names - set(series)
    assert not unknown, f"{expr}: not exported by gateway/metrics.py: {sorted(unknown)}"
    known_labels = set().union(*(series[name] for name in names)) | ADDED_LABELS
    assert labels <= known_labels, f"{expr}: labels {sorted(labels - known_labels)} not on {sorted(names)}"


def test_every_exported_family_has_a_panel():
    used = set().union(*(names_and_labels(expr)[0] for expr in dashboard_exprs()))
    families = {re.sub(r"_(bucket|sum|count)$", "", name) for name in used}
    exported_families = {re.sub(r"_(bucket|sum|count)$", "", name) for name in exported()}
    assert exported_families <= families, sorted(exported_families - families)


def test_the_dashboard_uses_the_provisioned_datasource():
    (datasource,) = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yaml").read_text())["datasources"]
    assert datasource["type"] == "prometheus" and datasource["url"] == "http://prometheus:9090"
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        for target in [panel, *panel["targets"]]:
            assert target["datasource"] == {"type": "prometheus", "uid": datasource["uid"]}, panel["title"]


def test_compose_runs_grafana_with_the_provisioning_mounted():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    grafana = compose["services"]["grafana"]
    image, _, tag = grafana["image"].partition(":")
    assert image == "grafana/grafana" and tag and tag != "latest"
    assert "prometheus" in grafana["depends_on"] and "prometheus" in compose["services"]
    mounts = dict(volume.rsplit(":", 1)[0].split(":", 1) for volume in grafana["volumes"])
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    (provider,) = yaml.safe_load((GRAFANA / "provisioning/dashboards/cardgate.yaml").read_text())["providers"]
    dashboards_source = next(src for src, target in mounts.items() if target == provider["options"]["path"])
    assert (ROOT / dashboards_source / DASHBOARD.name).is_file()
