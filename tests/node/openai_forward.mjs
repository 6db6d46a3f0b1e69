// The official Node `openai` SDK through asg's forward proxy, configured the way users must on
// Node 20: global fetch ignores HTTPS_PROXY, so the SDK gets undici's fetch with an
// EnvHttpProxyAgent (which reads HTTPS_PROXY / NO_PROXY); the CA comes from NODE_EXTRA_CA_CERTS.
// No base URL: the SDK talks to https://api.openai.com, which asg intercepts.
//
// Run by tests/python/test_forward_proxy.py with HTTPS_PROXY and NODE_EXTRA_CA_CERTS set; prints one
// JSON line of results and exits non-zero on the first failed expectation.
import assert from "node:assert/strict";
import OpenAI from "openai";
import { EnvHttpProxyAgent, fetch as undiciFetch } from "undici";

const FAKE_AWS_KEY = "AKIAIOSFODNN7EXAMPLE";

assert.ok(process.env.HTTPS_PROXY, "HTTPS_PROXY must be set");
assert.ok(process.env.NODE_EXTRA_CA_CERTS, "NODE_EXTRA_CA_CERTS must be set");
assert.equal(process.env.OPENAI_BASE_URL, undefined, "no base URL: the SDK must use its default");

const dispatcher = new EnvHttpProxyAgent();
const client = (headers = {}) =>
  new OpenAI({
    apiKey: "sk-test-not-real",
    maxRetries: 0,
    timeout: 20_000,
    defaultHeaders: headers,
    fetch: undiciFetch,
    fetchOptions: { dispatcher },
  });

const tools = [
  {
    type: "function",
    function: {
      name: "shell",
      description: "Run a command",
      parameters: { type: "object", properties: { command: { type: "string" } }, required: ["command"] },
    },
  },
];
const messages = (text) => [{ role: "user", content: text }];
const results = {};

// 1. A dangerous tool call comes back as an assistant refusal.
{
  const reply = await client({ "x-mock-scenario": "tool_shell" }).chat.completions.create({
    model: "gpt-4.1",
    messages: messages("show my ssh key"),
    tools,
  });
  const msg = reply.choices[0].message;
  assert.ok(!msg.tool_calls || msg.tool_calls.length === 0, `tool call not blocked: ${JSON.stringify(msg)}`);
  assert.match(msg.content, /blocked by the security gateway/);
  results.tool_call_blocked = true;
}

// 2. A secret in the answer is masked.
{
  const reply = await client({ "x-mock-scenario": "secret" }).chat.completions.create({
    model: "gpt-4.1",
    messages: messages("hello"),
  });
  const text = reply.choices[0].message.content;
  assert.ok(!text.includes(FAKE_AWS_KEY), `secret leaked: ${text}`);
  assert.match(text, /\[REDACTED:aws_access_key_id:[0-9a-f]+\]/);
  results.secret_masked = true;
}

// 3. A stream arrives incrementally (events are 250 ms apart upstream).
{
  const started = performance.now();
  const stream = await client({ "x-mock-delay-ms": "250" }).chat.completions.create({
    model: "gpt-4.1",
    messages: messages("hello"),
    stream: true,
  });
  const arrivals = [];
  let text = "";
  for await (const chunk of stream) {
    arrivals.push(performance.now() - started);
    text += chunk.choices[0]?.delta?.content ?? "";
  }
  assert.equal(text, "Hello from the mock upstream.");
  const spread = arrivals.at(-1) - arrivals[0];
  assert.ok(arrivals.length >= 4, `too few chunks: ${arrivals.length}`);
  assert.ok(spread >= 750, `stream was buffered: chunks arrived within ${spread.toFixed(0)} ms`);
  results.stream_chunks = arrivals.length;
  results.stream_spread_ms = Math.round(spread);
}

console.log(JSON.stringify(results));
