"""Self-tests of asg_harness (the pytest launchers), using tests/fixtures/fake_asg.py as the gateway."""

import pytest

import asg_harness
from asg_harness import FIXTURES, metric_value, parse_metrics

FAKE_ASG = FIXTURES / "fake_asg.py"


def info(gw):
    (labels,) = [lab for name, lab, _ in parse_metrics(gw.metrics_text()) if name == "fake_asg_info"]
    return labels


def test_gateway_factory_environment(asg_gateway, mock_upstream, monkeypatch):
    monkeypatch.setenv("ASG_E2E_LEAK_TEST", "1")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    gw = asg_gateway("strict", env={"FAKE_ASG_EXTRA": "y", "FAKE_ASG_READY_AFTER_MS": "300"}, bin=FAKE_ASG)
    labels = info(gw)
    assert labels["listen"] == gw.proxy_addr and labels["admin"] == gw.admin_addr
    assert gw.proxy_addr.startswith("127.0.0.1:") and gw.proxy_addr != gw.admin_addr
    assert labels["upstream"] == mock_upstream.base_url
    assert labels["policy"] == "strict" and labels["extra"] == "y"
    assert labels["data_dir"] == str(gw.data_dir)
    assert labels["proxy_vars"] == "" and labels["foreign_asg_vars"] == ""
    assert gw.metric_value("fake_asg_starts_total") == 1
    assert gw.metric_value("fake_asg_info", {"policy": "nope"}) is None
    assert gw.openai_base_url == gw.proxy_url + "/v1" and gw.anthropic_base_url == gw.proxy_url


def test_restart_and_policy_edit(asg_gateway):
    gw = asg_gateway(policy_text=("policy.toml", "v = 1\n"), bin=FAKE_ASG)
    status, _, body = asg_harness.http("GET", gw.proxy_url)
    assert (status, body) == (200, b"v = 1\n")
    gw.write_policy("v = 2\n")
    assert asg_harness.http("GET", gw.proxy_url)[2] == b"v = 2\n"
    ports = (gw.proxy_addr, gw.admin_addr)
    gw.kill_hard()
    assert not gw.running
    gw.restart()
    assert gw.running and (gw.proxy_addr, gw.admin_addr) == ports
    assert gw.metric_value("fake_asg_starts_total") == 2


def test_startup_failure_is_reported(mock_upstream):
    with pytest.raises(asg_harness.HarnessError, match="(?s)exited with status 3.*fake asg: broken"):
        asg_harness.Gateway(mock_upstream.base_url, env={"FAKE_ASG_FAIL": "broken"}, bin=FAKE_ASG)


def test_missing_binary_names_the_build_command(monkeypatch):
    monkeypatch.setenv("ASG_BIN", "/nonexistent/asg")
    with pytest.raises(asg_harness.HarnessError, match="cargo build -p asg"):
        asg_harness.asg_bin()


def test_metric_parsing():
    text = '# TYPE x counter\nx{a="1",b="q\\"uote"} 2\nx{a="2"} 3\ny 1.5e1\nbroken\n'
    assert metric_value(text, "x") == 5
    assert metric_value(text, "x", {"a": "1"}) == 2
    assert metric_value(text, "x", {"b": 'q"uote'}) == 2
    assert metric_value(text, "y") == 15.0
    assert metric_value(text, "z") is None
