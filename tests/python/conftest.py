"""pytest fixtures for asg end-to-end tests: the mock upstream and the real gateway.

Fixtures:
  mock_upstream   session-wide MockUpstream (plain HTTP)
  mock            the same mock, with its request log reset before the test
  asg_gateway     factory: asg_gateway(policy=None, *, env=None, upstream=None, policy_file=None,
                  policy_text=None, config=None, config_text=None, args=(), ready_timeout=20.0, bin=None)
                  -> a started Gateway (upstream defaults to the session mock); all are killed at teardown
  openai_client   factory: openai_client(base_url, headers=None, **kw) -> openai.OpenAI (max_retries=0)
  anthropic_client factory: anthropic_client(base_url, headers=None, **kw) -> anthropic.Anthropic

Binaries are never built here: run `make build` first. A missing binary fails the test with the command to
run (it is not skipped).
"""

import os

import pytest

import asg_harness

# The SDKs read proxy settings from the environment; tests talk to 127.0.0.1 directly.
for _var in [v for v in os.environ if v.upper().endswith("_PROXY")]:
    del os.environ[_var]
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"


@pytest.fixture(scope="session")
def mock_upstream():
    try:
        m = asg_harness.MockUpstream()
    except asg_harness.HarnessError as e:
        pytest.fail(str(e), pytrace=False)
    yield m
    m.close()


@pytest.fixture
def mock(mock_upstream):
    mock_upstream.reset()
    return mock_upstream


@pytest.fixture
def asg_gateway(mock_upstream):
    started = []

    def start(policy=None, *, upstream=None, **kwargs):
        try:
            gw = asg_harness.Gateway(upstream or mock_upstream.base_url, policy, **kwargs)
        except asg_harness.HarnessError as e:
            pytest.fail(str(e), pytrace=False)
        started.append(gw)
        return gw

    yield start
    for gw in started:
        gw.close()


@pytest.fixture
def openai_client():
    return asg_harness.openai_client


@pytest.fixture
def anthropic_client():
    return asg_harness.anthropic_client
