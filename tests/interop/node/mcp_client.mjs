#!/usr/bin/env node
// A client of latm's MCP endpoint written with the official TypeScript SDK
// (@modelcontextprotocol/sdk): its Client over StreamableHTTPClientTransport, with the
// tenant's API key as a bearer token.
//
//   LATM_API_KEY=latm_... node mcp_client.mjs --url http://127.0.0.1:8080/mcp < plan.json
//
// The plan on stdin is a JSON list of steps, run in order in one session:
//   {"op": "list"}                                      tools/list
//   {"op": "call", "name": "add", "arguments": {...}}   tools/call
//   {"op": "call", ..., "progress": true}               ... recording progress notifications
//
// Prints one JSON object: {"server": ..., "steps": [{"result": ...} or {"error": ...}],
// "list_changed": N} (N: notifications/tools/list_changed received). Exits 0 when the
// session could be opened, 1 when not, 2 on bad usage.

import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  CallToolResultSchema,
  ToolListChangedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';

const TIMEOUT_MS = 120_000;

function options() {
  const { values } = parseArgs({
    options: {
      url: { type: 'string', default: process.env.LATM_MCP_URL },
      key: { type: 'string', default: process.env.LATM_API_KEY },
    },
  });
  if (!values.url || !values.key) {
    process.stderr.write('mcp_client.mjs: needs --url and --key (or LATM_API_KEY)\n');
    process.exit(2);
  }
  return values;
}

function failure(error) {
  return { code: error.code ?? null, message: String(error.message ?? error) };
}

async function run(client, step) {
  if (step.op === 'list') {
    return client.listTools();
  }
  if (step.op === 'call') {
    const progress = [];
    const result = await client.callTool(
      { name: step.name, arguments: step.arguments ?? {} },
      CallToolResultSchema,
      {
        timeout: TIMEOUT_MS,
        resetTimeoutOnProgress: true,
        ...(step.progress ? { onprogress: (p) => progress.push(p) } : {}),
      },
    );
    return step.progress ? { ...result, progress } : result;
  }
  throw new Error(`unknown step ${JSON.stringify(step)}`);
}

async function main() {
  const { url, key } = options();
  const plan = JSON.parse(readFileSync(0, 'utf8'));
  const client = new Client({ name: 'latm-interop-node', version: '1.0.0' });
  let listChanged = 0;
  client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
    listChanged += 1;
  });
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { Authorization: `Bearer ${key}` } },
  });
  const report = { server: null, steps: [], list_changed: 0 };
  try {
    await client.connect(transport);
  } catch (error) {
    report.connect = failure(error);
    process.stdout.write(`${JSON.stringify(report)}\n`);
    process.exit(1);
  }
  report.server = client.getServerVersion();
  for (const step of plan) {
    try {
      report.steps.push({ result: await run(client, step) });
    } catch (error) {
      report.steps.push({ error: failure(error) });
    }
  }
  // A notification sent as the last step ended may still be on its way.
  await new Promise((resolve) => setTimeout(resolve, 200));
  report.list_changed = listChanged;
  await transport.terminateSession().catch(() => {});
  await client.close();
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

await main();
