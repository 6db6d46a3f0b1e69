"""Approvals with the official clients, through the real asg gateway against the mock upstream:
the `mcp` client's tool call is held until an operator approves it over the admin API and then
returns the tool's real answer; an OpenAI SDK tool call that needs approval comes back as a message
naming the approval, and the identical proposal passes once after approval."""

import asyncio
import json
import threading
import time

import httpx2
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

import asg_harness

POLICY = """
name = "approvals-sdk"
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
hold_secs = HOLD
"""

SCHEMA = {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}
CHAT_TOOLS = [{"type": "function", "function": {"name": "shell", "description": "Run a command", "parameters": SCHEMA}}]


def routes(mock):
    base = mock.base_url
    return (
        f'[[route]]\nname = "tools"\nprefix = "/mcp"\nupstream = "{base}"\napi = "mcp"\n\n'
        f'[[route]]\nname = "default"\nprefix = "/"\nupstream = "{base}"\n'
    )


def admin(gw, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    status, _, text = asg_harness.http(
        method, gw.admin_url + path, data, {"content-type": "application/json"} if data else None
    )
    return status, json.loads(text)


def pending(gw):
    return admin(gw, "GET", "/approvals?status=pending")[1]["approvals"]


def approve(gw, approval_id):
    status, body = admin(gw, "POST", "/approval/resolve", {"approval_id": approval_id, "approve": True, "resolver": "pytest"})
    assert status == 200, body
    return body


def test_mcp_client_tool_call_is_held_until_approved(asg_gateway, mock):
    gw = asg_gateway(policy_text=("sdk.toml", POLICY.replace("HOLD", "20")), config_text=routes(mock))

    def operator():
        deadline = time.time() + 15
        while time.time() < deadline:
            found = pending(gw)
            if found:
                assert found[0]["hold"] is True and found[0]["action_type"] == "shell"
                approve(gw, found[0]["approval_id"])
                return
            time.sleep(0.1)

    async def agent():
        http_client = httpx2.AsyncClient(headers={"x-agent-id": "pytest-agent"}, trust_env=False, timeout=30)
        async with streamable_http_client(gw.proxy_url + "/mcp", http_client=http_client) as streams:
            async with ClientSession(streams[0], streams[1]) as session:
                await session.initialize()
                return await session.call_tool("shell", {"command": "uptime"})

    t = threading.Thread(target=operator)
    t.start()
    started = time.time()
    result = asyncio.run(agent())
    t.join()
    assert not result.is_error, result
    assert result.content[0].text == "$ uptime\n(mock shell output)"
    assert time.time() - started < 15
    calls = [r for r in mock.requests_to("/mcp") if r["body"] and '"tools/call"' in r["body"]]
    assert len(calls) == 1


def test_openai_tool_call_needing_approval_names_it_then_passes_once(asg_gateway, mock, openai_client):
    gw = asg_gateway(policy_text=("sdk.toml", POLICY.replace("HOLD", "0")), config_text=routes(mock))
    client = openai_client(gw.openai_base_url, {"x-mock-scenario": "tool_benign", "x-session-id": "sdk-chat", "x-agent-id": "sdk-agent"})

    def ask():
        return client.chat.completions.create(
            model="gpt-4.1", messages=[{"role": "user", "content": "list my files"}], tools=CHAT_TOOLS
        ).choices[0].message

    first = ask()
    assert not first.tool_calls
    [approval] = pending(gw)
    assert approval["approval_id"] in first.content and "requires approval" in first.content
    approve(gw, approval["approval_id"])
    second = ask()
    assert second.tool_calls and second.tool_calls[0].function.name == "shell"
    assert json.loads(second.tool_calls[0].function.arguments) == {"command": "ls -la"}
    third = ask()
    assert not third.tool_calls, "released once only"
    status, a = admin(gw, "GET", f"/approval/{approval['approval_id']}")
    assert status == 200 and a["status"] == "used" and a["permit_token"] == ""
