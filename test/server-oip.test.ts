/**
 * The Open Inference Protocol surface of `ferry serve`, over real HTTP against real onnxruntime:
 * every endpoint, JSON and binary tensors, KServe v1, and each error with its status and code.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { decodeInferResponse, encodeInferRequest } from '../src/protocol/index.ts';
import type { InferRequest } from '../src/protocol/types.ts';
import { post, ROOT, serve, type TestServer } from './helpers.ts';

const IRIS = join(ROOT, 'examples', 'iris');
const readJson = (path: string) => JSON.parse(readFileSync(join(IRIS, path), 'utf8'));
const setosa = readJson('requests/setosa.json');
/** A binary-extension header promising 16 bytes of tensor data; the tests send only 4. */
const BINARY_HEADER_ONLY =
  '{"inputs":[{"name":"input","datatype":"FP32","shape":[1,4],"parameters":{"binary_data_size":16}}]}';

function assertClose(actual: unknown, expected: unknown, tolerance: number, path = 'value'): void {
  if (typeof expected === 'number') {
    assert.ok(
      Math.abs(Number(actual) - expected) <= tolerance,
      `${path}: ${actual} is not within ${tolerance} of ${expected}`,
    );
  } else if (Array.isArray(expected)) {
    assert.ok(Array.isArray(actual), `${path} is not an array`);
    assert.equal(actual.length, expected.length, `${path} length`);
    for (const [i, e] of expected.entries())
      assertClose((actual as unknown[])[i], e, tolerance, `${path}[${i}]`);
  } else if (expected !== null && typeof expected === 'object') {
    for (const [k, v] of Object.entries(expected))
      assertClose((actual as Record<string, unknown>)[k], v, tolerance, `${path}.${k}`);
  } else {
    assert.deepEqual(actual, expected, path);
  }
}

describe('ferry serve examples/iris', () => {
  let server: TestServer;
  let base: string;
  before(async () => {
    server = await serve([IRIS]);
    base = server.url;
  });
  after(() => server.close());

  test('server metadata, liveness and readiness', async () => {
    const meta = (await (await fetch(`${base}/v2`)).json()) as { name: string; extensions: string[] };
    assert.equal(meta.name, 'ferry');
    assert.ok(meta.extensions.includes('binary_tensor_data'));
    assert.equal((await fetch(`${base}/v2/health/live`)).status, 200);
    assert.equal((await fetch(`${base}/v2/health/ready`)).status, 200);
  });

  test('the ready answer says when startup reached each step (the platform reads it for cold starts)', async () => {
    const answer = (await (await fetch(`${base}/v2/health/ready`)).json()) as {
      ready: boolean;
      startup: Record<string, number>;
    };
    assert.equal(answer.ready, true);
    const s = answer.startup;
    for (const key of [
      'processStartedAt',
      'listeningAt',
      'modelLoadStartedAt',
      'modelLoadedAt',
      'warmedAt',
      'readyAt',
    ])
      assert.ok(Number.isInteger(s[key]) && s[key]! > 1.6e12, `${key}: ${s[key]}`);
    assert.ok(s.processStartedAt! <= s.modelLoadStartedAt!, JSON.stringify(s));
    assert.ok(s.modelLoadStartedAt! <= s.modelLoadedAt!, JSON.stringify(s));
    assert.ok(s.modelLoadedAt! <= s.warmedAt!, JSON.stringify(s));
    assert.ok(s.warmedAt! <= s.readyAt! && s.listeningAt! <= s.readyAt!, JSON.stringify(s));
    assert.ok(s.readyAt! <= Date.now());
  });

  test('the data path (node:http front): HEAD probes, query strings, versions, escaped names, other routes', async () => {
    const head = await fetch(`${base}/v2/health/ready`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), '', 'HEAD has no body');
    assert.equal((await fetch(`${base}/v2/health/live?probe=1`)).status, 200);
    const body = JSON.stringify(setosa);
    for (const path of [
      '/v2/models/iris/infer?x=1',
      '/v2/models/iris/versions/1/infer',
      '/v2/models/%69ris/infer',
    ]) {
      const response = await post(`${base}${path}`, body);
      assert.equal(response.status, 200, `${path}: ${response.text}`);
      assert.equal(response.json.model_name, 'iris', path);
    }
    const noVersion = await post(`${base}/v2/models/iris/versions/9/infer`, body);
    assert.equal(noVersion.status, 404, noVersion.text);
    assert.equal(noVersion.json.code, 'FERRY_VERSION_NOT_FOUND');
    // Not the front's: Fastify answers, with the same error body.
    const badEscape = await post(`${base}/v2/models/%E0%A4%A/infer`, body);
    assert.equal(badEscape.status, 400, badEscape.text);
    assert.match(String(badEscape.json.code), /^FERRY_/);
    const unknown = await post(`${base}/v2/models/iris/infer/extra`, body);
    assert.equal(unknown.status, 404, unknown.text);
    assert.equal(unknown.json.code, 'FERRY_ROUTE_NOT_FOUND');
  });

  test('model metadata comes from the ONNX session', async () => {
    for (const path of ['/v2/models/iris', '/v2/models/iris/versions/1']) {
      const meta = (await (await fetch(base + path)).json()) as Record<string, unknown>;
      assert.equal(meta.name, 'iris');
      assert.deepEqual(meta.versions, ['1']);
      assert.equal(meta.platform, 'onnxruntime_onnx');
      assert.equal(meta.state, 'READY');
      assert.deepEqual(meta.inputs, [{ name: 'input', datatype: 'FP32', shape: [-1, 4] }]);
      assert.deepEqual(meta.outputs, [
        { name: 'label', datatype: 'INT64', shape: [-1] },
        { name: 'probabilities', datatype: 'FP32', shape: [-1, 3] },
      ]);
    }
    assert.equal((await fetch(`${base}/v2/models/iris/ready`)).status, 200);
    assert.equal((await fetch(`${base}/v2/models/iris/versions/1/ready`)).status, 200);
  });

  test('every example in ferry.yaml gives its expected response (JSON)', async () => {
    for (const name of ['setosa', 'versicolor', 'virginica', 'batch']) {
      const response = await post(
        `${base}/v2/models/iris/infer`,
        JSON.stringify(readJson(`requests/${name}.json`)),
      );
      assert.equal(response.status, 200, response.text);
      assert.equal(response.json.model_name, 'iris');
      assert.equal(response.json.model_version, '1');
      assertClose(response.json, readJson(`responses/${name}.json`), 1e-4, name);
    }
  });

  test('the request id is echoed, and requested outputs limit the response', async () => {
    const body = { ...setosa, id: 'req-42', outputs: [{ name: 'label' }] };
    const response = await post(`${base}/v2/models/iris/versions/1/infer`, JSON.stringify(body), {
      'x-request-id': 'trace-1',
    });
    assert.equal(response.status, 200, response.text);
    assert.equal(response.json.id, 'req-42');
    assert.equal(response.headers.get('x-request-id'), 'trace-1');
    assert.deepEqual(response.json.outputs, [{ name: 'label', datatype: 'INT64', shape: [1], data: [0] }]);
  });

  test('binary tensor extension: binary request and binary outputs give the JSON answer', async () => {
    const request: InferRequest = {
      inputs: [
        {
          name: 'input',
          datatype: 'FP32',
          shape: [2, 4],
          data: new Float32Array([5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3]),
        },
      ],
      outputs: [
        { name: 'label', parameters: { binary_data: true } },
        { name: 'probabilities', parameters: { binary_data: true } },
      ],
    };
    const encoded = encodeInferRequest(request, { binary: true, binaryOutputs: true });
    assert.ok(encoded.headers['inference-header-content-length']);
    const http = await fetch(`${base}/v2/models/iris/infer`, {
      method: 'POST',
      body: encoded.body,
      headers: encoded.headers,
    });
    assert.equal(http.status, 200);
    assert.equal(http.headers.get('content-type'), 'application/octet-stream');
    const headerLength = http.headers.get('inference-header-content-length');
    assert.ok(headerLength !== null);
    const body = Buffer.from(await http.arrayBuffer());
    const header = JSON.parse(body.subarray(0, Number(headerLength)).toString('utf8'));
    assert.equal(header.outputs[0].parameters.binary_data_size, 16, 'two INT64 labels = 16 bytes');
    const response = decodeInferResponse(body, {
      contentType: 'application/octet-stream',
      inferenceHeaderLength: headerLength,
    });
    const label = response.outputs.find((o) => o.name === 'label')!;
    assert.deepEqual([...(label.data as BigInt64Array)], [0n, 2n]);

    // The typed client does the same.
    const viaClient = await server.client.infer('iris', request, { binary: true, binaryOutputs: true });
    assert.deepEqual(
      [...(viaClient.outputs.find((o) => o.name === 'label')!.data as BigInt64Array)],
      [0n, 2n],
    );
  });

  test('KServe v1 predict: instances in, predictions out', async () => {
    const response = await post(
      `${base}/v1/models/iris:predict`,
      JSON.stringify({
        instances: [
          [5.1, 3.5, 1.4, 0.2],
          [6.7, 3.0, 5.2, 2.3],
        ],
      }),
    );
    assert.equal(response.status, 200, response.text);
    const predictions = response.json.predictions as unknown[];
    assert.equal(predictions.length, 2);
    assert.equal((await fetch(`${base}/v1/models/iris`)).status, 200);
  });

  const errorCases: Array<{
    name: string;
    path?: string;
    body: string;
    headers?: Record<string, string>;
    status: number;
    code: string;
    mentions: RegExp;
  }> = [
    {
      name: 'malformed JSON',
      body: '{"inputs": [',
      status: 400,
      code: 'FERRY_BAD_REQUEST',
      mentions: /JSON/i,
    },
    { name: 'no inputs', body: '{}', status: 400, code: 'FERRY_BAD_REQUEST', mentions: /inputs/ },
    {
      name: 'wrong datatype',
      body: JSON.stringify({
        inputs: [{ name: 'input', datatype: 'FP64', shape: [1, 4], data: [1, 2, 3, 4] }],
      }),
      status: 400,
      code: 'FERRY_INVALID_INPUT',
      mentions: /"input".*FP64.*FP32|FP32.*FP64/,
    },
    {
      name: 'wrong shape',
      body: JSON.stringify({
        inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 5], data: [1, 2, 3, 4, 5] }],
      }),
      status: 400,
      code: 'FERRY_INVALID_INPUT',
      mentions: /"input"/,
    },
    {
      name: 'element count not matching the shape',
      body: JSON.stringify({
        inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 4], data: [1, 2, 3, 4] }],
      }),
      status: 400,
      code: 'FERRY_INVALID_INPUT',
      mentions: /"input".*8/,
    },
    {
      name: 'unknown input',
      body: JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] }),
      status: 400,
      code: 'FERRY_INVALID_INPUT',
      mentions: /"x"/,
    },
    {
      name: 'unknown requested output',
      body: JSON.stringify({ ...setosa, outputs: [{ name: 'nope' }] }),
      status: 400,
      code: 'FERRY_INVALID_INPUT',
      mentions: /nope/,
    },
    {
      name: 'binary size past the end of the body',
      body: `${BINARY_HEADER_ONLY}\u0000\u0000\u0000\u0000`,
      headers: {
        'content-type': 'application/octet-stream',
        'inference-header-content-length': String(BINARY_HEADER_ONLY.length),
      },
      status: 400,
      code: 'FERRY_BAD_REQUEST',
      mentions: /input/,
    },
    {
      name: 'unknown model',
      path: '/v2/models/nope/infer',
      body: JSON.stringify(setosa),
      status: 404,
      code: 'FERRY_MODEL_NOT_FOUND',
      mentions: /nope/,
    },
    {
      name: 'unknown version',
      path: '/v2/models/iris/versions/7/infer',
      body: JSON.stringify(setosa),
      status: 404,
      code: 'FERRY_VERSION_NOT_FOUND',
      mentions: /"7"/,
    },
    {
      name: 'unknown route',
      path: '/v3/whatever',
      body: '{}',
      status: 404,
      code: 'FERRY_ROUTE_NOT_FOUND',
      mentions: /v3/,
    },
  ];
  for (const c of errorCases) {
    test(`error: ${c.name} -> ${c.status} ${c.code}`, async () => {
      const response = await post(base + (c.path ?? '/v2/models/iris/infer'), c.body, c.headers);
      assert.equal(response.status, c.status, response.text);
      assert.equal(response.json.code, c.code, response.text);
      assert.match(String(response.json.error), c.mentions);
    });
  }

  test('Content-Type: JSON or none is read; text/plain and other types are 415 on v2 and v1 (docs/errors.md)', async () => {
    const v2 = `${base}/v2/models/iris/infer`;
    const v1 = `${base}/v1/models/iris:predict`;
    const v2Body = JSON.stringify(setosa);
    const v1Body = JSON.stringify({ instances: [[5.1, 3.5, 1.4, 0.2]] });
    const send = async (url: string, body: string, contentType: string | undefined) => {
      // A Blob without a type makes fetch send no Content-Type at all (a string body would be text/plain).
      const response = await fetch(url, {
        method: 'POST',
        body: contentType === undefined ? new Blob([body]) : body,
        headers: contentType === undefined ? {} : { 'content-type': contentType },
      });
      return { status: response.status, json: (await response.json()) as Record<string, string> };
    };
    for (const [url, body] of [
      [v2, v2Body],
      [v1, v1Body],
    ] as const) {
      for (const type of ['application/json', 'application/json; charset=utf-8', undefined]) {
        const ok = await send(url, body, type);
        assert.equal(ok.status, 200, `${url} ${type}: ${JSON.stringify(ok.json)}`);
      }
      for (const type of [
        'text/plain',
        'text/plain;charset=UTF-8',
        'application/xml',
        'multipart/form-data',
      ]) {
        const refused = await send(url, body, type);
        assert.equal(refused.status, 415, `${url} ${type}: ${JSON.stringify(refused.json)}`);
        assert.equal(refused.json.code, 'FERRY_UNSUPPORTED_MEDIA_TYPE');
        assert.ok(refused.json.error!.includes(type), refused.json.error);
        assert.match(refused.json.hint!, /content-type: application\/json/);
      }
    }
    const binaryOnV1 = await send(v1, v1Body, 'application/octet-stream');
    assert.equal(binaryOnV1.status, 415);
    assert.match(binaryOnV1.json.hint!, /\/v2\/models\/\{name\}\/infer/);
  });

  test('curl: -d @file alone (a form type) gets a 415 saying to add the header; the documented curl works', async () => {
    const file = join(IRIS, 'requests', 'setosa.json');
    // Asynchronously: the server answers from this process.
    const curl = async (...args: string[]) =>
      (await promisify(execFile)('curl', ['-s', '-w', '\\n%{http_code}', ...args])).stdout.split('\n');
    const [bare, bareStatus] = await curl(`${base}/v2/models/iris/infer`, '-d', `@${file}`);
    assert.equal(bareStatus, '415', bare);
    const refused = JSON.parse(bare!) as Record<string, string>;
    assert.equal(refused.code, 'FERRY_UNSUPPORTED_MEDIA_TYPE');
    assert.match(refused.error!, /application\/x-www-form-urlencoded/);
    assert.match(refused.hint!, /curl -d .*add -H 'content-type: application\/json'/);
    // As README.md and docs/cli.md print it.
    const [ok, okStatus] = await curl(
      `${base}/v2/models/iris/infer`,
      '-H',
      'content-type: application/json',
      '-d',
      `@${file}`,
    );
    assert.equal(okStatus, '200', ok);
    assert.equal((JSON.parse(ok!) as { model_name: string }).model_name, 'iris');
  });

  test('metadata of an unknown model or version is a 404 with a code', async () => {
    const model = await fetch(`${base}/v2/models/nope`);
    assert.equal(model.status, 404);
    assert.equal(((await model.json()) as { code: string }).code, 'FERRY_MODEL_NOT_FOUND');
    const version = await fetch(`${base}/v2/models/iris/versions/9/ready`);
    assert.equal(version.status, 404);
  });

  test('inference threads run at a lower CPU priority than the event loop (Linux)', {
    skip: process.platform !== 'linux',
  }, () => {
    const niceOf = (tid: string) =>
      Number(readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ')[16]);
    const nices = readdirSync('/proc/self/task').map(niceOf);
    assert.equal(niceOf(String(process.pid)), 0, 'the event loop keeps normal priority');
    assert.ok(nices.includes(10), `some thread runs at nice 10 (got ${[...new Set(nices)].join(', ')})`);
  });

  test('/metrics counts requests by model, version and status', async () => {
    const text = await (await fetch(`${base}/metrics`)).text();
    assert.match(text, /ferry_requests_total\{model="iris",version="1",status="200"\} \d+/);
    assert.match(text, /ferry_requests_total\{model="iris",version="1",status="400"\} \d+/);
    assert.match(text, /ferry_model_ready\{model="iris",version="1"\} 1/);
    assert.match(text, /ferry_model_load_duration_seconds\{model="iris",version="1"\} [\d.e-]+/);
    assert.match(text, /ferry_request_duration_seconds_bucket/);
  });
});

describe('draining', () => {
  test('once draining starts, inference and other routes answer 503 FERRY_SHUTTING_DOWN for a gateway to retry elsewhere; probes answer', async () => {
    const server = await serve([IRIS]);
    try {
      server.dataPlane.startDraining();
      const checks = [
        ['/v2/models/iris/infer', JSON.stringify(setosa)], // the node:http front
        ['/v1/models/iris:predict', JSON.stringify({ instances: [[5.1, 3.5, 1.4, 0.2]] })], // Fastify
      ] as const;
      for (const [path, body] of checks) {
        const response = await post(`${server.url}${path}`, body);
        assert.equal(response.status, 503, `${path}: ${response.text}`);
        assert.equal(response.json.code, 'FERRY_SHUTTING_DOWN', path);
        assert.equal(response.headers.get('x-ferry-draining'), '1', path);
        assert.equal(response.headers.get('connection'), 'close', path);
        assert.equal(response.headers.get('retry-after'), '1', path);
      }
      assert.equal((await fetch(`${server.url}/v2/health/ready`)).status, 503, 'not ready while draining');
      assert.equal((await fetch(`${server.url}/v2/health/live`)).status, 200, 'still live');
    } finally {
      await server.close();
    }
  });
});

describe('body limits', () => {
  test('a body over the server limit is 413 FERRY_PAYLOAD_TOO_LARGE, before the model sees it', async () => {
    const server = await serve([IRIS], { maxBodyBytes: 64 * 1024 });
    try {
      const data = new Array(20_000).fill(1.5);
      const body = JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [5000, 4], data }] });
      const response = await post(`${server.url}/v2/models/iris/infer`, body);
      assert.equal(response.status, 413, response.text);
      assert.equal(response.json.code, 'FERRY_PAYLOAD_TOO_LARGE');
      // A declared shape far beyond the limit is refused from the header alone, without allocating it.
      const huge = JSON.stringify({
        inputs: [
          { name: 'input', datatype: 'FP32', shape: [1e9, 4], parameters: { binary_data_size: 16e9 } },
        ],
      });
      const binary = await post(`${server.url}/v2/models/iris/infer`, huge, {
        'content-type': 'application/octet-stream',
        'inference-header-content-length': String(Buffer.byteLength(huge)),
      });
      assert.ok([400, 413].includes(binary.status), binary.text);
      // A body without Content-Length (chunked) is refused when it passes the limit; the rest is read and dropped.
      const chunked = await new Promise<{ status: number; text: string }>((resolve, reject) => {
        const request = httpRequest(
          `${server.url}/v2/models/iris/infer`,
          { method: 'POST', headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' } },
          (res) => {
            let text = '';
            res.on('data', (c) => {
              text += c;
            });
            res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
          },
        );
        request.on('error', reject);
        const piece = 'x'.repeat(16 * 1024);
        for (let i = 0; i < 8; i++) request.write(piece);
        request.end();
      });
      assert.equal(chunked.status, 413, chunked.text);
      assert.equal(JSON.parse(chunked.text).code, 'FERRY_PAYLOAD_TOO_LARGE');
    } finally {
      await server.close();
    }
  });
});
