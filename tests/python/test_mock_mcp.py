"""The official `mcp` client (2.3.0) against the mock's MCP endpoint, with JSON and SSE answers."""

import asyncio

import httpx2
import pytest
from mcp import Client, ClientSession
from mcp.client.streamable_http import streamable_http_client

from asg_harness import FAKE_AWS_KEY


async def session_roundtrip(url, mode):
    http_client = httpx2.AsyncClient(headers={"x-mock-mcp-mode": mode}, trust_env=False)
    async with streamable_http_client(url, http_client=http_client) as streams:
        async with ClientSession(streams[0], streams[1]) as session:
            await session.initialize()
            tools = await session.list_tools()
            result = await session.call_tool("read_config", {"path": "config.ini"})
    return [t.name for t in tools.tools], result


@pytest.mark.parametrize("mode", ["json", "sse"])
def test_client_session_json_and_sse(mock, mode):
    names, result = asyncio.run(session_roundtrip(mock.url("/mcp"), mode))
    assert names == ["read_config", "shell"]
    assert not result.is_error
    assert result.content[0].text == f"config loaded: aws_access_key_id = {FAKE_AWS_KEY}"
    assert result.structured_content == {"aws_access_key_id": FAKE_AWS_KEY}
    methods = [(r["method"], (r["body"] or "")[:60]) for r in mock.requests()]
    # The client opens its GET listening stream in the background once the
    # session exists, so where the GET lands among the POSTs is a race.
    assert methods[0][0] == "POST" and '"method":"initialize"' in methods[0][1]
    assert [m for m, _ in methods].count("GET") == 1
    assert methods[-1][0] == "DELETE"
    posts = [body for m, body in methods if m == "POST"]
    assert len(posts) == 4
    assert '"method":"tools/call"' in posts[3]


def test_high_level_client_falls_back_from_discover(mock):
    async def run():
        async with Client(mock.url("/mcp")) as client:
            return await client.call_tool("shell", {"command": "id"})

    result = asyncio.run(run())
    assert result.content[0].text == "$ id\n(mock shell output)"
    first, second = mock.requests()[:2]
    assert '"server/discover"' in first["body"] and first["headers"]["mcp-protocol-version"] == "2026-07-28"
    assert '"initialize"' in second["body"]
