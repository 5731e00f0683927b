/**
 * Error mapping and wire format of OipClient against a node:http server that returns canned OIP answers.
 * (End-to-end tests against the real Ferry server live with the server.)
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { FerryError } from '../core/errors.ts';
import { decodeInferRequest, encodeInferResponse } from '../protocol/index.ts';
import { OipClient } from './oip-client.ts';

type Handler = (req: IncomingMessage, body: Buffer, res: ServerResponse) => void;

const routes = new Map<string, Handler>();
let server: Server;
let baseUrl: string;

function json(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(value));
}

before(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const handler = routes.get(`${req.method} ${req.url}`);
      if (handler) handler(req, Buffer.concat(chunks), res);
      else json(res, 404, { error: `no route ${req.method} ${req.url}`, code: 'FERRY_ROUTE_NOT_FOUND' });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;

  routes.set('GET /v2', (_req, _body, res) =>
    json(res, 200, { name: 'canned', version: '1', extensions: [] }),
  );
  routes.set('GET /v2/health/live', (_req, _body, res) => json(res, 200, { live: true }));
  routes.set('GET /v2/health/ready', (_req, _body, res) => json(res, 503, { ready: false }));
  routes.set('GET /v2/models/m/ready', (_req, _body, res) => json(res, 200, { name: 'm', ready: true }));
  routes.set('GET /v2/models/ghost/ready', (_req, _body, res) =>
    json(res, 404, {
      error: 'model "ghost" is not in the repository',
      code: 'FERRY_MODEL_NOT_FOUND',
      hint: 'See /v2/repository/index.',
    }),
  );
  routes.set('POST /v2/models/busy/infer', (_req, _body, res) =>
    json(res, 503, { error: 'queue full', code: 'FERRY_QUEUE_FULL' }, { 'retry-after': '2' }),
  );
  routes.set('POST /v2/models/triton/infer', (_req, _body, res) =>
    json(res, 400, { error: 'unexpected shape for input' }),
  );
  routes.set('POST /v2/models/html/infer', (_req, _body, res) => {
    res.writeHead(502, { 'content-type': 'text/html' });
    res.end('<html>bad gateway</html>');
  });
  // Echo: decodes the request with the real codec and answers with its inputs as outputs.
  routes.set('POST /v2/models/echo/versions/2/infer', (req, body, res) => {
    const request = decodeInferRequest(
      body,
      {
        contentType: req.headers['content-type'],
        inferenceHeaderLength: req.headers['inference-header-content-length'] as string | undefined,
      },
      { maxBodyBytes: 1 << 20 },
    );
    const encoded = encodeInferResponse(
      { model_name: 'echo', model_version: '2', outputs: request.inputs },
      request,
    );
    res.writeHead(200, encoded.headers);
    res.end(encoded.body);
  });
});

after(() => {
  server.closeAllConnections();
  return new Promise<void>((resolve) => server.close(() => resolve()));
});

async function rejectsWith(promise: Promise<unknown>, code: string, pattern: RegExp): Promise<FerryError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof FerryError, String(error));
    assert.equal(error.code, code, error.message);
    assert.match(error.message, pattern);
    return error;
  }
  assert.fail('expected a rejection');
}

describe('OipClient', () => {
  it('reads metadata and health', async () => {
    const client = new OipClient(baseUrl);
    assert.deepEqual(await client.serverMetadata(), { name: 'canned', version: '1', extensions: [] });
    assert.equal(await client.live(), true);
    assert.equal(await client.ready(), false);
    assert.equal(await client.modelReady('m'), true);
  });

  it("carries the server's error code, hint, status and Retry-After", async () => {
    const client = new OipClient(baseUrl);
    const missing = await rejectsWith(
      client.modelReady('ghost'),
      'FERRY_MODEL_NOT_FOUND',
      /^model "ghost" is not in the repository$/,
    );
    assert.equal(missing.hint, 'See /v2/repository/index.');
    assert.deepEqual(missing.details, { status: 404, url: `${baseUrl.slice(0, -1)}/v2/models/ghost/ready` });
    const busy = await rejectsWith(
      client.inferJson('busy', { inputs: [] }),
      'FERRY_QUEUE_FULL',
      /queue full/,
    );
    assert.equal(busy.retryAfterSeconds, 2);
  });

  it('maps foreign error bodies by status', async () => {
    const client = new OipClient(baseUrl);
    await rejectsWith(
      client.inferJson('triton', {}),
      'FERRY_BAD_REQUEST',
      /POST .*\/v2\/models\/triton\/infer answered 400: unexpected shape for input/,
    );
    await rejectsWith(
      client.inferJson('html', {}),
      'FERRY_CONNECTION_FAILED',
      /answered 502: <html>bad gateway<\/html>/,
    );
    await rejectsWith(
      client.repositoryIndex(),
      'FERRY_ROUTE_NOT_FOUND',
      /no route POST \/v2\/repository\/index/,
    );
  });

  it('names the URL when the server cannot be reached', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const client = new OipClient(`http://127.0.0.1:${port}`);
    const error = await rejectsWith(
      client.live(),
      'FERRY_CONNECTION_FAILED',
      new RegExp(`cannot reach http://127\\.0\\.0\\.1:${port}/v2/health/live`),
    );
    assert.equal(error.status, 502);
  });

  it('gives up after timeoutMs with FERRY_DEADLINE_EXCEEDED', async () => {
    routes.set('GET /v2/models/stuck', () => {
      // Never answers; the client's timeout ends the request (the server closes the socket on shutdown).
    });
    const client = new OipClient(baseUrl, { timeoutMs: 50 });
    await rejectsWith(
      client.modelMetadata('stuck'),
      'FERRY_DEADLINE_EXCEEDED',
      /GET .*\/v2\/models\/stuck did not answer within 50 ms/,
    );
  });

  it('rejects a bad base URL', () => {
    assert.throws(() => new OipClient('not a url'), {
      code: 'FERRY_BAD_REQUEST',
      message: /"not a url" is not a valid URL/,
    });
    assert.throws(() => new OipClient('ftp://x'), {
      code: 'FERRY_BAD_REQUEST',
      message: /http:\/\/ or https:\/\//,
    });
  });

  for (const binary of [false, true]) {
    it(`infers with ${binary ? 'binary' : 'JSON'} tensors through a version path`, async () => {
      const client = new OipClient(baseUrl, { headers: { authorization: 'Bearer t' } });
      const response = await client.infer(
        'echo',
        {
          inputs: [
            { name: 'a', datatype: 'INT64', shape: [2], data: new BigInt64Array([2n ** 62n + 1n, -1n]) },
            { name: 'b', datatype: 'BYTES', shape: [1], data: [Buffer.from('žluť')] },
          ],
        },
        { version: '2', binary, binaryOutputs: binary },
      );
      assert.equal(response.model_name, 'echo');
      assert.equal(response.model_version, '2');
      assert.deepEqual(Array.from(response.outputs[0]!.data as BigInt64Array), [2n ** 62n + 1n, -1n]);
      assert.equal(Buffer.from((response.outputs[1]!.data as Uint8Array[])[0]!).toString(), 'žluť');
    });
  }
});
