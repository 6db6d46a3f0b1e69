"""The official SDKs (openai 3.54, anthropic 2.12) pointed directly at the mock upstream: every scenario,
streamed and not, must parse, so the mock is a faithful stand-in for the real APIs."""

import json

import anthropic
import openai
import pytest

from asg_harness import FAKE_AWS_KEY, FAKE_OPENAI_KEY, SHELL_BENIGN_ARGS, SHELL_SECRET_ARGS, TEXT_REPLY

USER_TEXT = "please echo this prompt"
SECRET_TEXT = (
    f"Here is the AWS key from the config: {FAKE_AWS_KEY} and the OpenAI key: {FAKE_OPENAI_KEY} (store them safely)."
)
CUSTOM_ARGS = '{"path":"/etc/passwd","note":"a \\"quoted\\" word"}'

# scenario id -> (headers, expected text or None, expected (tool name, args JSON text) or None)
SCENARIOS = {
    "text": ({}, TEXT_REPLY, None),
    "secret": ({"x-mock-scenario": "secret"}, SECRET_TEXT, None),
    "echo": ({"x-mock-scenario": "echo"}, USER_TEXT, None),
    "tool_shell": ({"x-mock-scenario": "tool_shell"}, None, ("shell", SHELL_SECRET_ARGS)),
    "tool_benign": ({"x-mock-scenario": "tool_benign"}, None, ("shell", SHELL_BENIGN_ARGS)),
    "tool_custom": (
        {"x-mock-scenario": "tool_custom", "x-mock-tool-name": "read_file", "x-mock-tool-args": CUSTOM_ARGS},
        None,
        ("read_file", CUSTOM_ARGS),
    ),
}
# Transport knobs that must not change what the SDK sees.
TRANSPORTS = {
    "plain": {},
    "gzip": {"x-mock-gzip": "1"},
    "chunk3": {"x-mock-chunk": "3"},
    "gzip+chunk1": {"x-mock-gzip": "1", "x-mock-chunk": "1"},
}

SCHEMA = {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}
CHAT_TOOLS = [{"type": "function", "function": {"name": "shell", "description": "Run a command", "parameters": SCHEMA}}]
RESPONSES_TOOLS = [{"type": "function", "name": "shell", "description": "Run a command", "parameters": SCHEMA, "strict": False}]
ANTHROPIC_TOOLS = [{"name": "shell", "description": "Run a command", "input_schema": SCHEMA}]
CHAT_MESSAGES = [{"role": "user", "content": USER_TEXT}]
CLAUDE = "claude-sonnet-4-6"  # not on the SDK's deprecation list (no warnings)


@pytest.fixture
def oai(mock, openai_client):
    return lambda headers=None: openai_client(mock.openai_base_url, headers)


@pytest.fixture
def ant(mock, anthropic_client):
    return lambda headers=None: anthropic_client(mock.base_url, headers)


# ---------------------------------------------------------------- OpenAI Chat Completions


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_chat_create(oai, scenario):
    headers, text, tool = SCENARIOS[scenario]
    c = oai(headers).chat.completions.create(model="gpt-4.1", messages=CHAT_MESSAGES, tools=CHAT_TOOLS)
    msg = c.choices[0].message
    if tool:
        assert c.choices[0].finish_reason == "tool_calls" and msg.content is None
        assert [(t.function.name, t.function.arguments) for t in msg.tool_calls] == [tool]
    else:
        assert c.choices[0].finish_reason == "stop" and msg.content == text and not msg.tool_calls
    assert c.usage.total_tokens > 0


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_chat_stream_plain(oai, scenario, transport):
    headers, text, tool = SCENARIOS[scenario]
    stream = oai({**headers, **TRANSPORTS[transport]}).chat.completions.create(
        model="gpt-4.1", messages=CHAT_MESSAGES, tools=CHAT_TOOLS, stream=True, stream_options={"include_usage": True}
    )
    content, calls, finish, usage = "", {}, None, None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            content += choice.delta.content or ""
            for tc in choice.delta.tool_calls or []:
                call = calls.setdefault(tc.index, {"name": "", "arguments": ""})
                call["name"] += (tc.function.name or "") if tc.function else ""
                call["arguments"] += (tc.function.arguments or "") if tc.function else ""
            finish = choice.finish_reason or finish
    assert usage is not None and usage.total_tokens > 0
    if tool:
        assert finish == "tool_calls" and [(c["name"], c["arguments"]) for c in calls.values()] == [tool]
    else:
        assert finish == "stop" and content == text and not calls


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_chat_stream_helper(oai, scenario):
    headers, text, tool = SCENARIOS[scenario]
    with oai(headers).chat.completions.stream(model="gpt-4.1", messages=CHAT_MESSAGES, tools=CHAT_TOOLS) as s:
        events = [e.type for e in s]
        final = s.get_final_completion()
    msg = final.choices[0].message
    if tool:
        assert "tool_calls.function.arguments.done" in events
        assert [(t.function.name, t.function.arguments) for t in msg.tool_calls] == [tool]
        assert json.loads(msg.tool_calls[0].function.arguments) == json.loads(tool[1])
    else:
        assert "content.done" in events and msg.content == text


def test_chat_fixture_with_parallel_tool_calls(oai):
    headers = {"x-mock-fixture": "openai_chat/stream_parallel_tool_calls.sse"}
    with oai(headers).chat.completions.stream(model="gpt-4.1", messages=CHAT_MESSAGES) as s:
        final = s.get_final_completion()
    calls = [(t.function.name, json.loads(t.function.arguments)) for t in final.choices[0].message.tool_calls]
    assert calls == [("shell", {"command": "cat ~/.ssh/id_rsa"}), ("read_file", {"path": "/etc/passwd"})]


def test_chat_errors(oai):
    with pytest.raises(openai.RateLimitError):
        oai({"x-mock-status": "429"}).chat.completions.create(model="m", messages=CHAT_MESSAGES)
    stream = oai({"x-mock-error-midstream": "1"}).chat.completions.create(model="m", messages=CHAT_MESSAGES, stream=True)
    seen = []
    with pytest.raises(openai.APIError, match="server had an error"):
        for chunk in stream:
            seen.append(chunk)
    assert seen, "some deltas arrive before the error"
    stream = oai({"x-mock-close-midstream": "1"}).chat.completions.create(model="m", messages=CHAT_MESSAGES, stream=True)
    with pytest.raises(openai.APIConnectionError):
        for _ in stream:
            pass


# ---------------------------------------------------------------- OpenAI Responses


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_responses_create(oai, scenario):
    headers, text, tool = SCENARIOS[scenario]
    r = oai(headers).responses.create(model="gpt-5", input=USER_TEXT, tools=RESPONSES_TOOLS)
    assert r.status == "completed" and r.usage.input_tokens_details.cache_write_tokens == 0
    calls = [(o.name, o.arguments) for o in r.output if o.type == "function_call"]
    if tool:
        assert calls == [tool] and r.output_text == ""
    else:
        assert r.output_text == text and not calls


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_responses_stream_helper(oai, scenario, transport):
    headers, text, tool = SCENARIOS[scenario]
    client = oai({**headers, **TRANSPORTS[transport]})
    with client.responses.stream(model="gpt-5", input=[{"role": "user", "content": USER_TEXT}], tools=RESPONSES_TOOLS) as s:
        deltas, arg_deltas, seq = "", "", []
        for event in s:
            seq.append(event.sequence_number)
            if event.type == "response.output_text.delta":
                deltas += event.delta
            elif event.type == "response.function_call_arguments.delta":
                arg_deltas += event.delta
        final = s.get_final_response()
    assert seq == list(range(len(seq)))
    calls = [(o.name, o.arguments) for o in final.output if o.type == "function_call"]
    if tool:
        assert calls == [tool] and arg_deltas == tool[1]
    else:
        assert final.output_text == text == deltas and not calls


def test_responses_errors(oai):
    with pytest.raises(openai.InternalServerError):
        oai({"x-mock-status": "500"}).responses.create(model="gpt-5", input="x")
    with oai({"x-mock-error-midstream": "1"}).responses.stream(model="gpt-5", input="x") as s:
        types = [e.type for e in s]
        with pytest.raises(RuntimeError, match="response.completed"):
            s.get_final_response()
    assert types[-2:] == ["error", "response.failed"]
    assert "response.output_text.delta" in types


def test_responses_fixture_parallel_calls(oai):
    with oai({"x-mock-fixture": "openai_responses/stream_parallel_function_calls.sse"}).responses.stream(
        model="gpt-5", input="x"
    ) as s:
        final = s.get_final_response()
    assert [o.name for o in final.output] == ["shell", "read_file"]


# ---------------------------------------------------------------- Anthropic Messages


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_anthropic_create(ant, scenario):
    headers, text, tool = SCENARIOS[scenario]
    m = ant(headers).messages.create(
        model=CLAUDE, max_tokens=256, messages=CHAT_MESSAGES, tools=ANTHROPIC_TOOLS
    )
    texts = "".join(b.text for b in m.content if b.type == "text")
    uses = [(b.name, b.input) for b in m.content if b.type == "tool_use"]
    if tool:
        assert m.stop_reason == "tool_use" and uses == [(tool[0], json.loads(tool[1]))]
    else:
        assert m.stop_reason == "end_turn" and texts == text and not uses


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_anthropic_stream_helper(ant, scenario, transport):
    headers, text, tool = SCENARIOS[scenario]
    client = ant({**headers, **TRANSPORTS[transport]})
    with client.messages.stream(
        model=CLAUDE, max_tokens=256, messages=CHAT_MESSAGES, tools=ANTHROPIC_TOOLS
    ) as s:
        streamed = "".join(s.text_stream)
        final = s.get_final_message()
    uses = [(b.name, b.input) for b in final.content if b.type == "tool_use"]
    if tool:
        assert final.stop_reason == "tool_use" and uses == [(tool[0], json.loads(tool[1]))]
    else:
        assert final.stop_reason == "end_turn" and streamed == text and not uses


def test_anthropic_beta_and_query_string(ant, mock):
    m = ant().beta.messages.create(model=CLAUDE, max_tokens=16, messages=CHAT_MESSAGES)
    assert m.content[0].text == TEXT_REPLY
    # Claude Code calls /v1/messages?beta=true: the route matches on the path only.
    m = ant().messages.create(model=CLAUDE, max_tokens=16, messages=CHAT_MESSAGES, extra_query={"beta": "true"})
    assert m.content[0].text == TEXT_REPLY
    paths = [r["path"] for r in mock.requests_to("/v1/messages")]
    assert paths == ["/v1/messages", "/v1/messages?beta=true"]
    assert mock.requests()[0]["headers"]["authorization"] == "Bearer sk-ant-test-not-real"


def test_anthropic_errors(ant):
    with pytest.raises(anthropic.OverloadedError):
        ant({"x-mock-status": "529"}).messages.create(model="c", max_tokens=16, messages=CHAT_MESSAGES)
    with pytest.raises(anthropic.RateLimitError):
        ant({"x-mock-status": "429"}).messages.create(model="c", max_tokens=16, messages=CHAT_MESSAGES)
    with pytest.raises(anthropic.APIStatusError, match="overloaded_error"):
        with ant({"x-mock-error-midstream": "1"}).messages.stream(model="c", max_tokens=16, messages=CHAT_MESSAGES) as s:
            for _ in s:
                pass


# ---------------------------------------------------------------- what reached the mock


def test_requests_are_recorded_for_every_sdk(oai, ant, mock):
    oai().chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": f"key {FAKE_AWS_KEY}"}])
    oai().responses.create(model="gpt-5", input="hello")
    ant().messages.create(model=CLAUDE, max_tokens=16, messages=CHAT_MESSAGES)
    paths = [r["path"] for r in mock.requests()]
    assert paths == ["/v1/chat/completions", "/v1/responses", "/v1/messages"]
    first = mock.requests()[0]
    assert first["headers"]["user-agent"].startswith("OpenAI/Python 3.54")
    assert json.loads(first["body"])["messages"][0]["content"] == f"key {FAKE_AWS_KEY}"
