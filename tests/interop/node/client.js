#!/usr/bin/env node
// A client of latm.orchestrator.v1.OrchestratorService written the way another team would
// write one: from the .proto alone, with @grpc/grpc-js and @grpc/proto-loader, over TLS.
//
//   node client.js --target 127.0.0.1:50051 --ca ca.pem --proto protos/latm/orchestrator/v1/orchestrator.proto
//
// The API key comes from --key or LATM_API_KEY (and the others from LATM_TARGET,
// LATM_CA_FILE, LATM_PROTO). The tenant must hold the tool `add(a, b)`, and the server's
// user model must answer the Solve question with a call that makes "5".
//
// Prints one JSON object: each call's result and the list of mismatches. Exits 0 when
// every answer is as expected, 1 on a mismatch, 2 on bad usage.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { parseArgs } = require('node:util');

const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const DEADLINE_MS = 60_000;

function options() {
  const { values } = parseArgs({
    options: {
      target: { type: 'string', default: process.env.LATM_TARGET },
      ca: { type: 'string', default: process.env.LATM_CA_FILE },
      key: { type: 'string', default: process.env.LATM_API_KEY },
      proto: { type: 'string', default: process.env.LATM_PROTO },
      'server-name': { type: 'string' },
    },
  });
  const missing = ['target', 'ca', 'key', 'proto'].filter((name) => !values[name]);
  if (missing.length) {
    process.stderr.write(`client.js: missing ${missing.map((n) => `--${n}`).join(', ')}\n`);
    process.exit(2);
  }
  return values;
}

// The service constructor, loaded from the proto the way its users would: the include
// dir is the folder above `latm/` (imports are written `latm/...`), and
// google/protobuf/*.proto come bundled with proto-loader.
function loadService(protoFile) {
  const root = path.resolve(path.dirname(protoFile), '..', '..', '..');
  const definition = protoLoader.loadSync(path.relative(root, path.resolve(protoFile)), {
    includeDirs: [root],
    keepCase: true, // field names as in the proto: arguments_json, value_json
    longs: String,
    enums: String, // EXEC_STATUS_OK, not 1
    defaults: true, // absent scalars read as '' / 0, as in every other proto3 runtime
    oneofs: true,
  });
  return grpc.loadPackageDefinition(definition).latm.orchestrator.v1.OrchestratorService;
}

function unary(client, method, request, metadata) {
  return new Promise((resolve) => {
    const deadline = new Date(Date.now() + DEADLINE_MS);
    client[method](request, metadata, { deadline }, (error, response) => {
      resolve(error ? { error: { code: error.code, details: error.details } } : { response });
    });
  });
}

async function main() {
  const args = options();
  const Service = loadService(args.proto);
  const channelOptions = {};
  if (args['server-name']) {
    channelOptions['grpc.ssl_target_name_override'] = args['server-name'];
  }
  const credentials = grpc.credentials.createSsl(fs.readFileSync(args.ca));
  const client = new Service(args.target, credentials, channelOptions);
  const authorized = new grpc.Metadata();
  authorized.set('authorization', `Bearer ${args.key}`);

  const results = {};
  const mismatches = [];
  const expect = (what, got, want) => {
    if (JSON.stringify(got) !== JSON.stringify(want)) {
      mismatches.push({ what, got, want });
    }
  };

  // ListTools: the tenant's one tool.
  const listed = await unary(client, 'ListTools', {}, authorized);
  results.list_tools = listed;
  const tools = listed.response ? listed.response.tools : [];
  expect('ListTools error', listed.error, undefined);
  expect('ListTools names', tools.map((t) => t.name), ['add']);
  expect('ListTools entrypoint', tools.map((t) => t.entrypoint), ['add']);
  expect('ListTools version', tools.map((t) => t.version), [1]);
  expect('ListTools sha256 is hex', tools.every((t) => /^[0-9a-f]{64}$/.test(t.sha256)), true);

  // ExecuteTool: JSON in, JSON out; 42 must come back as the JSON number 42.
  const executed = await unary(
    client,
    'ExecuteTool',
    { tool: 'add', arguments_json: JSON.stringify({ a: 2, b: 40 }) },
    authorized,
  );
  results.execute_tool = executed;
  const execution = executed.response || {};
  expect('ExecuteTool error', executed.error, undefined);
  expect('ExecuteTool status', execution.status, 'EXEC_STATUS_OK');
  expect('ExecuteTool value', execution.value_json && JSON.parse(execution.value_json), 42);
  expect('ExecuteTool tool', execution.tool, 'add');

  // Solve: the scripted user model writes the call; the sandbox runs it.
  const solved = await unary(
    client,
    'Solve',
    { question: 'What is 2 plus 3?', tool: 'add' },
    authorized,
  );
  results.solve = solved;
  const answer = solved.response || {};
  expect('Solve error', solved.error, undefined);
  expect('Solve answer', answer.answer, '5');
  expect('Solve route', answer.route, 'tool');
  expect('Solve tool', answer.tool, 'add');
  expect('Solve has no error text', answer.error, '');

  // No key: refused before anything runs.
  const refused = await unary(client, 'ListTools', {}, new grpc.Metadata());
  results.unauthenticated = refused;
  expect('no key code', refused.error && refused.error.code, grpc.status.UNAUTHENTICATED);

  client.close();
  results.mismatches = mismatches;
  process.stdout.write(`${JSON.stringify(results)}\n`);
  return mismatches.length ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    process.stderr.write(`client.js: ${error.stack || error}\n`);
    process.exitCode = 1;
  },
);
