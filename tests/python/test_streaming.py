"""Streaming inspection through the real `asg` binary, driven by the official SDKs (openai 3.54, anthropic
2.12) against the mock upstream: keys split across two events are masked, dangerous streamed tool calls are
replaced by refusals the SDKs still parse, benign streams come through unchanged, and every SDK helper
(chat tool-call helpers, Responses and Anthropic stream managers) works on the rewritten streams."""

import json
import time
import uuid

import anthropic
import openai
import pytest

import asg_harness
from asg_harness import FAKE_AWS_KEY, FAKE_OPENAI_KEY, TEXT_REPLY

# Not "echo this prompt": the classifier reads that as a request for the
# system prompt (a known false positive, `benign_61` in the regression corpus).
USER_TEXT = "please echo this message"
SCHEMA = {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}
CHAT_TOOLS = [{"type": "function", "function": {"name": "shell", "description": "Run a command", "parameters": SCHEMA}}]
RESPONSES_TOOLS = [{"type": "function", "name": "shell", "description": "Run a command", "parameters": SCHEMA, "strict": False}]
ANTHROPIC_TOOLS = [{"name": "shell", "description": "Run a command", "input_schema": SCHEMA}]
MESSAGES = [{"role": "user", "content": USER_TEXT}]
CLAUDE = "claude-sonnet-4-6"

# What must never reach the client: any piece of either key longer than what a mask shows.
LEAKS = [FAKE_AWS_KEY[:8], FAKE_AWS_KEY[8:], FAKE_OPENAI_KEY[8:24], FAKE_OPENAI_KEY[-16:]]
BLOCKED = "The call to tool `shell` was blocked by the security gateway"
TRANSPORTS = {
    "plain": {},
    "gzip": {"x-mock-gzip": "1"},
    "chunk3": {"x-mock-chunk": "3"},
    "gzip+chunk1": {"x-mock-gzip": "1", "x-mock-chunk": "1"},
}
SECRET = {"x-mock-scenario": "secret"}
SHELL = {"x-mock-scenario": "tool_shell"}
# The dev profile lets a read-only lookup through (it refuses `shell` whatever the command).
WEATHER_ARGS = '{"city":"Paris","unit":"celsius"}'
BENIGN = {"x-mock-scenario": "tool_custom", "x-mock-tool-name": "get_weather", "x-mock-tool-args": WEATHER_ARGS}


@pytest.fixture(scope="module")
def gw(mock_upstream):
    try:
        g = asg_harness.Gateway(mock_upstream.base_url, "dev")
    except asg_harness.HarnessError as e:
        pytest.fail(str(e), pytrace=False)
    yield g
    g.close()


@pytest.fixture
def session_headers():
    """A session of its own per test: the gateway's session risk must not carry over between tests."""
    return {"x-session-id": f"stream-test-{uuid.uuid4().hex}"}


@pytest.fixture
def oai(gw, session_headers):
    return lambda headers=None: asg_harness.openai_client(gw.openai_base_url, {**session_headers, **(headers or {})})


@pytest.fixture
def ant(gw, session_headers):
    return lambda headers=None: asg_harness.anthropic_client(gw.anthropic_base_url, {**session_headers, **(headers or {})})


def assert_masked(text: str):
    for leak in LEAKS:
        assert leak not in text, f"{leak!r} leaked: {text!r}"
    assert "[REDACTED:aws_access_key_id:" in text and "[REDACTED:openai_api_key:" in text, text


# ---------------------------------------------------------------- OpenAI Chat Completions


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_chat_split_key_is_masked(oai, transport):
    stream = oai({**SECRET, **TRANSPORTS[transport]}).chat.completions.create(
        model="gpt-4.1", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    content, finish, usage, chunks = "", None, None, []
    for chunk in stream:
        chunks.append(chunk)
        usage = chunk.usage or usage
        for choice in chunk.choices:
            assert LEAKS[0] not in (choice.delta.content or ""), "a key prefix reached the client"
            content += choice.delta.content or ""
            finish = choice.finish_reason or finish
    assert_masked(content)
    assert content.startswith("Here is the AWS key from the config: [REDACTED:aws_access_key_id:")
    assert content.endswith("(store them safely).")
    assert finish == "stop" and usage.total_tokens > 0
    assert {c.id for c in chunks} == {chunks[0].id}


def test_chat_helper_blocks_dangerous_call_and_still_parses(oai):
    with oai(SHELL).chat.completions.stream(model="gpt-4.1", messages=MESSAGES, tools=CHAT_TOOLS) as s:
        events = [e.type for e in s]
        final = s.get_final_completion()
    choice = final.choices[0]
    assert not choice.message.tool_calls
    assert BLOCKED in choice.message.content and "id_rsa" not in choice.message.content
    assert choice.finish_reason == "stop"
    assert "content.done" in events and "tool_calls.function.arguments.done" not in events


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_chat_helper_benign_call_is_unchanged(oai, transport):
    with oai({**BENIGN, **TRANSPORTS[transport]}).chat.completions.stream(
        model="gpt-4.1", messages=MESSAGES, tools=CHAT_TOOLS
    ) as s:
        events = [e.type for e in s]
        final = s.get_final_completion()
    calls = final.choices[0].message.tool_calls
    assert [(t.function.name, t.function.arguments) for t in calls] == [("get_weather", WEATHER_ARGS)]
    assert calls[0].id and final.choices[0].finish_reason == "tool_calls"
    assert "tool_calls.function.arguments.done" in events


def test_chat_benign_text_is_unchanged(oai):
    with oai().chat.completions.stream(model="gpt-4.1", messages=MESSAGES) as s:
        streamed = "".join(e.delta for e in s if e.type == "content.delta")
        final = s.get_final_completion()
    assert streamed == final.choices[0].message.content == TEXT_REPLY


def test_chat_secret_in_arguments_is_masked(oai):
    args = json.dumps({"path": "/tmp/notes.txt", "note": f"key {FAKE_AWS_KEY}"})
    headers = {"x-mock-scenario": "tool_custom", "x-mock-tool-name": "save_note", "x-mock-tool-args": args}
    with oai(headers).chat.completions.stream(model="gpt-4.1", messages=MESSAGES, tools=CHAT_TOOLS) as s:
        final = s.get_final_completion()
    (call,) = final.choices[0].message.tool_calls
    parsed = json.loads(call.function.arguments)
    assert call.function.name == "save_note" and parsed["path"] == "/tmp/notes.txt"
    assert parsed["note"].startswith("key [REDACTED:aws_access_key_id:")


def test_chat_midstream_error_reaches_the_sdk(oai):
    stream = oai({"x-mock-error-midstream": "1"}).chat.completions.create(model="m", messages=MESSAGES, stream=True)
    seen = []
    with pytest.raises(openai.APIError, match="server had an error"):
        for chunk in stream:
            seen.append(chunk)
    assert seen, "deltas before the error arrive"


def test_chat_upstream_cut_reaches_the_sdk(oai):
    stream = oai({**SECRET, "x-mock-close-midstream": "1"}).chat.completions.create(
        model="m", messages=MESSAGES, stream=True
    )
    text = ""
    # The gateway ends the stream with an error chunk of the API's own form.
    with pytest.raises(openai.APIError, match="cut short"):
        for chunk in stream:
            text += "".join(c.delta.content or "" for c in chunk.choices)
    assert LEAKS[0] not in text


# ---------------------------------------------------------------- OpenAI Responses


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_responses_split_key_is_masked_in_every_copy(oai, transport):
    with oai({**SECRET, **TRANSPORTS[transport]}).responses.stream(model="gpt-5", input=USER_TEXT) as s:
        deltas, seq, done_texts = "", [], []
        for event in s:
            seq.append(event.sequence_number)
            if event.type == "response.output_text.delta":
                deltas += event.delta
            elif event.type == "response.output_text.done":
                done_texts.append(event.text)
            elif event.type == "response.content_part.done":
                done_texts.append(event.part.text)
        final = s.get_final_response()
    assert seq == list(range(len(seq)))
    assert_masked(deltas)
    assert final.output_text == deltas and done_texts == [deltas, deltas]


def test_responses_blocks_dangerous_call(oai):
    with oai(SHELL).responses.stream(model="gpt-5", input=USER_TEXT, tools=RESPONSES_TOOLS) as s:
        types = [e.type for e in s]
        final = s.get_final_response()
    assert [o.type for o in final.output] == ["message"]
    assert BLOCKED in final.output_text and "id_rsa" not in final.output_text
    assert "response.function_call_arguments.delta" not in types
    assert types[-1] == "response.completed"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_responses_benign_call_is_unchanged(oai, transport):
    with oai({**BENIGN, **TRANSPORTS[transport]}).responses.stream(
        model="gpt-5", input=USER_TEXT, tools=RESPONSES_TOOLS
    ) as s:
        arg_deltas = "".join(e.delta for e in s if e.type == "response.function_call_arguments.delta")
        final = s.get_final_response()
    calls = [(o.name, o.arguments) for o in final.output if o.type == "function_call"]
    assert calls == [("get_weather", WEATHER_ARGS)] and arg_deltas == WEATHER_ARGS


def test_responses_midstream_error_reaches_the_sdk(oai):
    with oai({"x-mock-error-midstream": "1"}).responses.stream(model="gpt-5", input="x") as s:
        types = [e.type for e in s]
        with pytest.raises(RuntimeError, match="response.completed"):
            s.get_final_response()
    assert types[-2:] == ["error", "response.failed"]


# ---------------------------------------------------------------- Anthropic Messages


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_anthropic_split_key_is_masked(ant, transport):
    with ant({**SECRET, **TRANSPORTS[transport]}).messages.stream(
        model=CLAUDE, max_tokens=256, messages=MESSAGES
    ) as s:
        streamed = "".join(s.text_stream)
        final = s.get_final_message()
    assert_masked(streamed)
    assert final.content[0].text == streamed and final.stop_reason == "end_turn"


def test_anthropic_blocks_dangerous_tool_use(ant):
    with ant(SHELL).messages.stream(model=CLAUDE, max_tokens=256, messages=MESSAGES, tools=ANTHROPIC_TOOLS) as s:
        types = [e.type for e in s]
        final = s.get_final_message()
    assert [b.type for b in final.content] == ["text", "text"]
    assert BLOCKED in final.content[1].text
    assert final.stop_reason == "end_turn" and "input_json" not in types


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_anthropic_benign_tool_use_is_unchanged(ant, transport):
    with ant({**BENIGN, **TRANSPORTS[transport]}).messages.stream(
        model=CLAUDE, max_tokens=256, messages=MESSAGES, tools=ANTHROPIC_TOOLS
    ) as s:
        partial = [e.partial_json for e in s if e.type == "input_json"]
        final = s.get_final_message()
    uses = [(b.name, b.input) for b in final.content if b.type == "tool_use"]
    assert uses == [("get_weather", json.loads(WEATHER_ARGS))] and final.stop_reason == "tool_use"
    assert json.loads("".join(partial)) == json.loads(WEATHER_ARGS)


def test_anthropic_midstream_error_reaches_the_sdk(ant):
    with pytest.raises(anthropic.APIStatusError, match="overloaded_error"):
        with ant({"x-mock-error-midstream": "1"}).messages.stream(model="c", max_tokens=16, messages=MESSAGES) as s:
            for _ in s:
                pass


# ---------------------------------------------------------------- what the gateway recorded


def test_stream_decisions_are_counted(gw, oai):
    before = gw.metric_value("asg_decisions_total", {"stage": "response", "decision": "block"}) or 0
    with oai(SHELL).chat.completions.stream(model="gpt-4.1", messages=MESSAGES, tools=CHAT_TOOLS) as s:
        s.get_final_completion()
    # Metrics are recorded when the request is logged, just after the stream ends.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        after = gw.metric_value("asg_decisions_total", {"stage": "response", "decision": "block"}) or 0
        if after > before:
            break
        time.sleep(0.05)
    assert after == before + 1
    assert (gw.metric_value("asg_stream_events_total", {"dialect": "openai_chat"}) or 0) > 0


def test_stream_verdicts_and_masks_reach_the_audit(gw, oai):
    with oai(SHELL).chat.completions.stream(model="gpt-4.1", messages=MESSAGES, tools=CHAT_TOOLS) as s:
        blocked_id = s.get_final_completion().id
    fresh = {"x-session-id": f"audit-{uuid.uuid4().hex}"}  # no risk carried over from the blocked call
    stream = oai({**SECRET, **fresh}).chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True)
    for _ in stream:
        pass
    _, _, raw = asg_harness.http("GET", gw.admin_url + "/operator/api/audit?limit=50")
    text = raw.decode()
    events = json.loads(text)["events"]
    assert blocked_id
    shell = [e for e in events if any(t.startswith("shell:") for t in e.get("tools", []))]
    assert shell and shell[-1]["decision"] == "block" and shell[-1]["stage"] == "request+response"
    masked = [e for e in events if e["masked"] > 0 and e["stage"] == "request+response"]
    assert masked and masked[-1]["decision"] == "allow_with_redaction"
    assert FAKE_AWS_KEY not in text and FAKE_AWS_KEY[:8] not in text


# ---------------------------------------------------------------- blocked_tool_call = "error"


@pytest.fixture(scope="module")
def gw_error(mock_upstream):
    dev = (asg_harness.REPO_ROOT / "policies" / "dev.toml").read_text()
    assert 'blocked_tool_call = "refusal"' in dev
    text = dev.replace('blocked_tool_call = "refusal"', 'blocked_tool_call = "error"')
    try:
        g = asg_harness.Gateway(mock_upstream.base_url, policy_text=("dev-error.toml", text))
    except asg_harness.HarnessError as e:
        pytest.fail(str(e), pytrace=False)
    yield g
    g.close()


def test_error_mode_chat_sdk_raises(gw_error, session_headers):
    client = asg_harness.openai_client(gw_error.openai_base_url, {**session_headers, **SHELL})
    with pytest.raises(openai.APIError, match="blocked by the security gateway"):
        with client.chat.completions.stream(model="gpt-4.1", messages=MESSAGES, tools=CHAT_TOOLS) as s:
            for _ in s:
                pass


def test_error_mode_responses_sdk_sees_error_then_failed(gw_error, session_headers):
    client = asg_harness.openai_client(gw_error.openai_base_url, {**session_headers, **SHELL})
    with client.responses.stream(model="gpt-5", input=USER_TEXT, tools=RESPONSES_TOOLS) as s:
        events = list(s)
        with pytest.raises(RuntimeError, match="response.completed"):
            s.get_final_response()
    assert [e.type for e in events][-2:] == ["error", "response.failed"]
    assert "blocked by the security gateway" in events[-2].message
    assert not any(e.type.startswith("response.function_call") for e in events)


def test_error_mode_anthropic_sdk_raises(gw_error, session_headers):
    client = asg_harness.anthropic_client(gw_error.anthropic_base_url, {**session_headers, **SHELL})
    with pytest.raises(anthropic.APIStatusError, match="blocked by the security gateway"):
        with client.messages.stream(model=CLAUDE, max_tokens=256, messages=MESSAGES, tools=ANTHROPIC_TOOLS) as s:
            for _ in s:
                pass


# ---------------------------------------------------------------- parallel calls (wire fixtures)


def test_parallel_calls_fixtures_parse_after_judging(oai, ant):
    """Two calls per turn (Chat interleaves their fragments): each is judged on its own, the SDKs parse
    what comes out, and what the agent could run is exactly the allowed calls."""
    # One session per dialect: two turns of dangerous proposals would trip the session's cumulative risk.
    fx = lambda name: {"x-mock-fixture": name, "x-mock-chunk": "7", "x-session-id": f"parallel-{name}"}  # noqa: E731
    with oai(fx("openai_chat/stream_parallel_tool_calls.sse")).chat.completions.stream(
        model="gpt-4.1", messages=MESSAGES
    ) as s:
        chat = s.get_final_completion().choices[0]
    with oai(fx("openai_responses/stream_parallel_function_calls.sse")).responses.stream(
        model="gpt-5", input="x"
    ) as s:
        resp = s.get_final_response()
    with ant(fx("anthropic_messages/stream_parallel_tool_use.sse")).messages.stream(
        model=CLAUDE, max_tokens=64, messages=MESSAGES
    ) as s:
        msg = s.get_final_message()
    chat_calls = [t.function.name for t in chat.message.tool_calls or []]
    resp_calls = [o.name for o in resp.output if o.type == "function_call"]
    ant_calls = [b.name for b in msg.content if b.type == "tool_use"]
    # `cat ~/.ssh/id_rsa` never reaches the agent; the three dialects agree on the rest.
    assert "shell" not in chat_calls and chat_calls == resp_calls == ant_calls
    assert BLOCKED in chat.message.content and BLOCKED in resp.output_text
    assert any(BLOCKED in b.text for b in msg.content if b.type == "text")
    assert chat.finish_reason == ("tool_calls" if chat_calls else "stop")
    assert msg.stop_reason == ("tool_use" if ant_calls else "end_turn")


# ---------------------------------------------------------------- approvals (session layer)

APPROVAL_POLICY = """
name = "stream-approvals"
[decision]
block_score = 1.3
challenge_score = 0.55
block_high_count = 1
# Every ordinary effect is challenged, so that any tool call goes through
# the approval flow under test.
[tools.effects]
read = "challenge"
build = "challenge"
vcs = "challenge"
write = "challenge"
local_net = "challenge"
infra_read = "challenge"
push = "challenge"
install = "challenge"
fetch = "challenge"
container = "challenge"
[proxy]
tool_challenge = "require_approval"
[session]
challenge_score = 50.0
block_score = 100.0
repeat_threshold = 1000
[approvals]
hold_secs = 0
"""


def _admin(gw, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    headers = {"content-type": "application/json"} if data else None
    status, _, text = asg_harness.http(method, gw.admin_url + path, data, headers)
    return status, json.loads(text)


@pytest.mark.parametrize("dialect", ["chat", "responses", "anthropic"])
def test_streamed_call_needing_approval_names_it_then_passes_once(asg_gateway, dialect):
    """Like a buffered answer: the streamed call is replaced by a message naming the approval it opened;
    once an operator approves, the identical streamed proposal reaches the agent, once."""
    gw = asg_gateway(policy_text=("stream-approvals.toml", APPROVAL_POLICY))
    headers = {"x-mock-scenario": "tool_benign", "x-session-id": f"stream-{dialect}", "x-agent-id": "sdk-agent"}

    def ask():
        """(streamed text, [(tool name, arguments object)])"""
        if dialect == "chat":
            client = asg_harness.openai_client(gw.openai_base_url, headers)
            with client.chat.completions.stream(model="gpt-4.1", messages=MESSAGES, tools=CHAT_TOOLS) as s:
                m = s.get_final_completion().choices[0].message
            return m.content or "", [(t.function.name, json.loads(t.function.arguments)) for t in m.tool_calls or []]
        if dialect == "responses":
            client = asg_harness.openai_client(gw.openai_base_url, headers)
            with client.responses.stream(model="gpt-5", input=USER_TEXT, tools=RESPONSES_TOOLS) as s:
                r = s.get_final_response()
            return r.output_text, [(o.name, json.loads(o.arguments)) for o in r.output if o.type == "function_call"]
        client = asg_harness.anthropic_client(gw.anthropic_base_url, headers)
        with client.messages.stream(model=CLAUDE, max_tokens=64, messages=MESSAGES, tools=ANTHROPIC_TOOLS) as s:
            m = s.get_final_message()
        text = "".join(b.text for b in m.content if b.type == "text")
        return text, [(b.name, b.input) for b in m.content if b.type == "tool_use"]

    text, calls = ask()
    assert not calls
    [approval] = _admin(gw, "GET", "/approvals?status=pending")[1]["approvals"]
    assert approval["approval_id"] in text and "requires approval" in text
    status, body = _admin(
        gw, "POST", "/approval/resolve", {"approval_id": approval["approval_id"], "approve": True, "resolver": "pytest"}
    )
    assert status == 200, body
    _, calls = ask()
    assert calls == [("shell", {"command": "ls -la"})]
    _, calls = ask()
    assert not calls, "released once only"
