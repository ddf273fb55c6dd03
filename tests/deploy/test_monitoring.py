"""Prometheus rules, their promtool unit tests, the Grafana dashboard and the runbook agree."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
MONITORING = REPO_ROOT / "deploy" / "monitoring"
RULES = MONITORING / "rules" / "rates.rules.yml"
RULE_TESTS = MONITORING / "tests" / "rates.rules.test.yml"
DASHBOARD = MONITORING / "grafana" / "rates-dashboard.json"
RUNBOOK = MONITORING / "README.md"
RUNBOOK_URL_PREFIX = "deploy/monitoring/README.md#"

HIGH_CARDINALITY_LABELS = {"orig_code", "dest_code", "batch_id", "request_id"}
REQUIRED_ANNOTATIONS = {"summary", "description", "runbook_url"}
SEVERITIES = {"critical", "warning", "info"}

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{([^}]*)\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", re.IGNORECASE
)
# An identifier that is neither part of a number/duration/variable nor a function call.
_IDENTIFIER = re.compile(r"(?<![\w:.$])([a-zA-Z_:][\w:]*)(?![\w:])(?!\s*\()")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}
_LABELS_TEMPLATE = re.compile(r"\$labels\.(\w+)")


def metric_names(expr: str) -> set[str]:
    """The metric (or recorded series) names a PromQL expression selects."""
    stripped = _STRING.sub('""', expr)
    stripped = _MATCHERS.sub("", stripped)
    stripped = _RANGE.sub("", stripped)
    stripped = _GROUPING.sub("", stripped)
    names = {name for name in _IDENTIFIER.findall(stripped) if name.lower() not in _KEYWORDS}
    return names | set(re.findall(r'__name__\s*=\s*"([^"]+)"', expr))


def label_names(expr: str) -> set[str]:
    """Label names a PromQL expression matches, groups or joins on, or names in a string."""
    names: set[str] = set()
    for matchers in _MATCHERS.findall(_STRING.sub('""', expr)):
        names.update(re.findall(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)", matchers))
    for grouping in _GROUPING.findall(expr):
        names.update(part.strip() for part in grouping.split(",") if part.strip())
    # label_replace / label_join take label names as strings; treat identifier-like strings so.
    names.update(s[1:-1] for s in _STRING.findall(expr) if re.fullmatch(r"\w+", s[1:-1]))
    return names


def github_anchor(heading: str) -> str:
    """The anchor GitHub generates for a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _rules() -> Iterator[dict[str, Any]]:
    for group in _load_yaml(RULES)["groups"]:
        yield from group["rules"]


def _alerts() -> list[dict[str, Any]]:
    return [rule for rule in _rules() if "alert" in rule]


def _recorded() -> dict[str, str]:
    return {rule["record"]: rule["expr"] for rule in _rules() if "record" in rule}


def _alert_rule_tests() -> Iterator[dict[str, Any]]:
    for case in _load_yaml(RULE_TESTS)["tests"]:
        yield from case.get("alert_rule_test") or []


def _exported_metrics(expr: str, recorded: dict[str, str]) -> set[str]:
    """Metric names an expression depends on, with recorded series replaced by their sources."""
    found: set[str] = set()
    for name in metric_names(expr):
        found |= _exported_metrics(recorded[name], recorded) if name in recorded else {name}
    return found


def _dashboard_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _dashboard_panels(panel.get("panels") or [])


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [
        target["expr"]
        for panel in _dashboard_panels(dashboard["panels"])
        for target in panel.get("targets") or []
        if target.get("expr")
    ]


@pytest.fixture(scope="module")
def promtool() -> str:
    """Path of the promtool binary; its absence is a failure, not a skip."""
    path = shutil.which("promtool") or (
        "/usr/bin/promtool" if Path("/usr/bin/promtool").exists() else None
    )
    if path is None:
        pytest.fail(
            "promtool not found: install Prometheus' tools (apt-get install prometheus, "
            "or put promtool from a prometheus.io release on PATH)",
            pytrace=False,
        )
    return path


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, capture_output=True, text=True, timeout=120, cwd=REPO_ROOT, check=False
    )


def test_promtool_check_rules_accepts_the_rules_file(promtool: str) -> None:
    """`promtool check rules` accepts the rules file (valid YAML, PromQL and templates)."""
    result = _run([promtool, "check", "rules", str(RULES)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass(promtool: str) -> None:
    """Every promtool unit test of the alerts and recording rules passes."""
    result = _run([promtool, "test", "rules", str(RULE_TESTS)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_unit_tests_load_the_rules_file() -> None:
    """The promtool test file loads exactly deploy/monitoring/rules/rates.rules.yml."""
    rule_files = _load_yaml(RULE_TESTS)["rule_files"]
    assert [(RULE_TESTS.parent / path).resolve() for path in rule_files] == [RULES.resolve()]


def test_every_alert_has_a_firing_unit_test_checking_labels_and_annotations() -> None:
    """Each alert has a unit test expecting it to fire with its severity and annotations."""
    alerts = {rule["alert"]: rule for rule in _alerts()}
    assert alerts, "no alerts found in the rules file"
    firing: dict[str, list[dict[str, Any]]] = {}
    for test in _alert_rule_tests():
        if test.get("exp_alerts"):
            firing.setdefault(test["alertname"], []).extend(test["exp_alerts"])
    assert not set(alerts) - set(firing), f"no firing test: {sorted(set(alerts) - set(firing))}"
    assert not set(firing) - set(alerts), f"unknown alerts: {sorted(set(firing) - set(alerts))}"
    for name, expected in firing.items():
        for alert in expected:
            assert alert.get("exp_labels", {}).get("severity") == alerts[name]["labels"]["severity"]
            assert set(alert.get("exp_annotations", {})) >= REQUIRED_ANNOTATIONS, name


def test_every_alert_has_a_not_firing_unit_test() -> None:
    """Each alert has a unit test expecting it not to fire (exp_alerts empty)."""
    quiet = {test["alertname"] for test in _alert_rule_tests() if not test.get("exp_alerts")}
    missing = {rule["alert"] for rule in _alerts()} - quiet
    assert not missing, f"alerts without a not-firing test: {sorted(missing)}"


def test_every_alert_has_severity_summary_description_and_runbook_url() -> None:
    """Each alert carries a known severity and summary, description and runbook_url annotations."""
    for rule in _alerts():
        name = rule["alert"]
        assert rule.get("labels", {}).get("severity") in SEVERITIES, name
        annotations = rule.get("annotations", {})
        assert set(annotations) >= REQUIRED_ANNOTATIONS, name
        assert all(annotations[key].strip() for key in REQUIRED_ANNOTATIONS), name
        assert annotations["runbook_url"] == RUNBOOK_URL_PREFIX + name.lower(), name


def test_every_runbook_anchor_is_a_readme_heading() -> None:
    """Each alert's runbook_url anchor is generated by a heading in the runbook README."""
    anchors: set[str] = set()
    in_fence = False
    for line in RUNBOOK.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
        elif not in_fence and (heading := re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)):
            anchors.add(github_anchor(heading.group(1)))
    for rule in _alerts():
        url = rule["annotations"]["runbook_url"]
        path, _, anchor = url.partition("#")
        assert (REPO_ROOT / path).resolve() == RUNBOOK.resolve(), url
        assert anchor in anchors, f"{rule['alert']}: no heading for #{anchor} in {RUNBOOK.name}"


def test_dashboard_parses_and_uses_the_prometheus_datasource_input() -> None:
    """The dashboard is JSON with a DS_PROMETHEUS input and every query on that datasource."""
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert isinstance(dashboard["schemaVersion"], int) and dashboard["schemaVersion"] >= 36
    assert [item["name"] for item in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    assert "DS_PROMETHEUS" in {var["name"] for var in dashboard["templating"]["list"]}
    panels = [p for p in _dashboard_panels(dashboard["panels"]) if p.get("type") != "row"]
    assert panels
    for panel in panels:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
    ids = [panel["id"] for panel in _dashboard_panels(dashboard["panels"])]
    assert len(ids) == len(set(ids)), "duplicate panel ids"


def test_dashboard_shows_every_metric_the_alerts_use() -> None:
    """Each metric an alert depends on (through recording rules too) appears in a panel query."""
    recorded = _recorded()
    on_dashboard = set().union(*(metric_names(expr) for expr in _dashboard_exprs()))
    for rule in _alerts():
        missing = _exported_metrics(rule["expr"], recorded) - on_dashboard
        assert not missing, f"{rule['alert']} uses metrics no panel shows: {sorted(missing)}"


def test_dashboard_queries_are_valid_promql(promtool: str, tmp_path: Path) -> None:
    """Every panel query parses as PromQL (Grafana's $__ interval variables substituted)."""
    exprs = [re.sub(r"\$__\w+", "5m", expr) for expr in _dashboard_exprs()]
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [{"record": f"dashboard:q{i}", "expr": e} for i, e in enumerate(exprs)],
            }
        ]
    }
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(yaml.safe_dump(rules), encoding="utf-8")
    result = _run([promtool, "check", "rules", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_use_no_high_cardinality_labels() -> None:
    """No rule matches, groups, joins, sets or templates a per-port/batch/request label."""
    for rule in _rules():
        name = rule.get("alert") or rule["record"]
        used = label_names(rule["expr"]) | set(rule.get("labels") or {})
        for text in (rule.get("annotations") or {}).values():
            used |= set(_LABELS_TEMPLATE.findall(text))
        banned = sorted(used & HIGH_CARDINALITY_LABELS)
        assert not banned, f"{name} uses high-cardinality labels: {banned}"


def test_promql_helpers_see_metrics_and_labels_through_syntax() -> None:
    """The metric and label extractors skip functions, keywords, numbers and find nested labels."""
    expr = (
        'histogram_quantile(0.99, sum by (route, le) (rate(a_bucket{job="x", batch_id=~"1"}[5m])))'
        " > 0.5 and on (orig_code) time() - max(b:rec offset 5m) > 1e3"
        ' or label_replace(c, "request_id", "$1", "dest_code", "(.*)")'
    )
    assert metric_names(expr) == {"a_bucket", "b:rec", "c"}
    assert label_names(expr) >= {"route", "le", "job", "batch_id", "orig_code", "request_id"}
    assert "dest_code" in label_names(expr)
    assert github_anchor("RatesApiHighErrorRatio") == "ratesapihigherrorratio"


def test_every_rule_aggregation_and_join_keeps_the_environment() -> None:
    """Each `by (...)` and `on (...)` in the rules keeps `environment`, so copies scraped by one
    Prometheus are never summed together and every alert names its copy."""
    for rule in _rules():
        name = rule.get("alert") or rule["record"]
        for grouping in _GROUPING.findall(rule["expr"]):
            labels = {part.strip() for part in grouping.split(",")}
            assert "environment" in labels, f"{name} groups by ({grouping}) without environment"


def test_every_scrape_target_carries_an_environment_label() -> None:
    """Every scrape job's targets get an `environment` target label (external labels would be
    invisible to the rules), the value the service's RATES_ENVIRONMENT defaults to."""
    config = _load_yaml(MONITORING / "prometheus.yml")
    assert config["scrape_configs"]
    for job in config["scrape_configs"]:
        for static in job["static_configs"]:
            assert static.get("labels", {}).get("environment") == "local", job["job_name"]


def test_dashboard_filters_every_query_by_an_environment_variable() -> None:
    """The dashboard has an `environment` variable fed by the scraped targets, and every panel
    query selects only that environment."""
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    variables = {var["name"]: var for var in dashboard["templating"]["list"]}
    assert "environment" in variables
    assert "label_values(" in variables["environment"]["definition"]
    assert variables["environment"]["definition"].rstrip(")").endswith("environment")
    for expr in _dashboard_exprs():
        selectors = re.findall(r"[a-z_:]+\{[^}]*\}", expr)
        assert selectors, expr
        for selector in selectors:
            assert 'environment="$environment"' in selector, expr
