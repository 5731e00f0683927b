/**
 * Handler models (model.format: handler) served over real HTTP from real worker threads: the OCR example
 * end to end (JSON and binary), and fixture handlers that fail in each way a user's code can fail.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { FerryError } from '../src/core/errors.ts';
import type { InferResponse } from '../src/protocol/types.ts';
import { actionBody, fixtureModel, metricValue } from './fixtures/models.ts';
import { post, ROOT, serve, type TestServer, tempDir, until } from './helpers.ts';

const OCR = join(ROOT, 'examples', 'ocr');
const readJson = (path: string) => JSON.parse(readFileSync(join(OCR, path), 'utf8'));

interface JsonTensor {
  name: string;
  datatype: string;
  shape: number[];
  data: number[];
}

function output(response: { outputs: unknown[] }, name: string): JsonTensor {
  const found = (response.outputs as JsonTensor[]).find((o) => o.name === name);
  assert.ok(found, `output ${name}`);
  return found;
}

describe('examples/ocr served over HTTP', () => {
  let server: TestServer;
  const expected = readJson('responses/sample.json') as { outputs: JsonTensor[] };
  const expectedBoxes = output(expected, 'boxes');
  const expectedScores = output(expected, 'scores');

  before(async () => {
    server = await serve([OCR]);
  });
  after(() => server?.close());

  test('the JSON example request gives the expected boxes and scores', async () => {
    const response = await post(
      `${server.url}/v2/models/ocr/infer`,
      readFileSync(join(OCR, 'requests/sample.json'), 'utf8'),
    );
    assert.equal(response.status, 200, response.text);
    const json = response.json as unknown as InferResponse & { outputs: JsonTensor[] };
    assert.equal(json.model_name, 'ocr');
    const boxes = output(json, 'boxes');
    assert.equal(boxes.datatype, 'INT32');
    assert.deepEqual(boxes.shape, expectedBoxes.shape);
    assert.deepEqual(boxes.data, expectedBoxes.data);
    const scores = output(json, 'scores');
    assert.deepEqual(scores.shape, expectedScores.shape);
    for (const [i, want] of expectedScores.data.entries()) {
      assert.ok(Math.abs(scores.data[i]! - want) <= 1e-3, `scores[${i}]: ${scores.data[i]} vs ${want}`);
    }
  });

  test('the same PNG as raw bytes through the binary tensor extension gives the same boxes', async () => {
    const png = readFileSync(join(OCR, 'sample.png'));
    const response = await server.client.infer(
      'ocr',
      { inputs: [{ name: 'image', datatype: 'BYTES', shape: [1], data: [new Uint8Array(png)] }] },
      { binary: true },
    );
    const boxes = response.outputs.find((o) => o.name === 'boxes')!;
    assert.deepEqual(boxes.shape, expectedBoxes.shape);
    assert.deepEqual([...(boxes.data as Int32Array)], expectedBoxes.data);
  });

  test("a non-image is 400 FERRY_INVALID_INPUT: the handler's FerryError keeps its code", async () => {
    const json = await post(
      `${server.url}/v2/models/ocr/infer`,
      JSON.stringify({ inputs: [{ name: 'image', datatype: 'BYTES', shape: [1], data: ['not a picture'] }] }),
    );
    assert.equal(json.status, 400, json.text);
    assert.equal(json.json.code, 'FERRY_INVALID_INPUT');
    assert.match(String(json.json.error), /^input "image"/);

    await assert.rejects(
      server.client.infer(
        'ocr',
        {
          inputs: [
            { name: 'image', datatype: 'BYTES', shape: [1], data: [new TextEncoder().encode('GIF89a...')] },
          ],
        },
        { binary: true },
      ),
      (error: unknown) =>
        error instanceof FerryError &&
        error.code === 'FERRY_INVALID_INPUT' &&
        /input "image"/.test(error.message),
    );
  });
});

describe('handler fixtures: failures of user code', () => {
  const dir = tempDir();
  let server: TestServer;
  let base: string;

  before(async () => {
    fixtureModel(dir.path, 'faulty', 'faulty', 'env:\n  GREETING: hello from ferry.yaml\n');
    fixtureModel(dir.path, 'crashy', 'faulty');
    fixtureModel(dir.path, 'broken-load', 'faulty', 'env:\n  FAIL_LOAD: "1"\n');
    fixtureModel(dir.path, 'no-predict', 'no-predict');
    // A handler with batching on and a dynamic first dimension: its requests are grouped, never concatenated.
    const batchedHandler = fixtureModel(dir.path, 'batched-handler', 'faulty');
    writeFileSync(
      join(batchedHandler, 'ferry.yaml'),
      readFileSync(join(batchedHandler, 'ferry.yaml'), 'utf8').replaceAll('shape: [1]', 'shape: [-1]') +
        'serving:\n  batching: true\n',
    );
    server = await serve([dir.path]);
    base = server.url;
  });
  after(async () => {
    await server?.close();
    dir.remove();
  });

  test('a handler reads ctx.env from the env section of ferry.yaml', async () => {
    const response = await post(`${base}/v2/models/faulty/infer`, actionBody('echo'));
    assert.equal(response.status, 200, response.text);
    assert.deepEqual(output(response.json as never, 'text').data, ['hello from ferry.yaml']);
    // Another model of the same code without env: sees nothing.
    const other = await post(`${base}/v2/models/crashy/infer`, actionBody('echo'));
    assert.deepEqual(output(other.json as never, 'text').data, ['(unset)']);
  });

  test('a plain Error thrown by predict is 500 FERRY_INFERENCE_FAILED naming its message', async () => {
    const response = await post(`${base}/v2/models/faulty/infer`, actionBody('throw'));
    assert.equal(response.status, 500, response.text);
    assert.equal(response.json.code, 'FERRY_INFERENCE_FAILED');
    assert.match(String(response.json.error), /fixture exploded on purpose/);
    // The worker survives its handler's exception.
    assert.equal((await post(`${base}/v2/models/faulty/infer`, actionBody('echo'))).status, 200);
  });

  test("requests that share a hop to the worker fail alone: one request's error is not its group's", async () => {
    // Two slow requests keep the only worker busy (two batches in flight); once a third waits in the queue,
    // two more join it, and the three travel to the worker together, as one group.
    const url = `${base}/v2/models/faulty/infer`;
    const slow = [post(url, actionBody('slow')), post(url, actionBody('slow'))];
    const first = post(url, actionBody('echo'));
    await until('a request waiting in the queue', async () => {
      const metrics = await (await fetch(`${base}/metrics`)).text();
      return (metricValue(metrics, 'ferry_queue_depth', { model: 'faulty', version: '1' }) ?? 0) >= 1;
    });
    const group = [first, ...['throw', 'echo'].map((a) => post(url, actionBody(a)))];
    const answers = await Promise.all(group);
    assert.deepEqual(
      answers.map((r) => r.status),
      [200, 500, 200],
      answers.map((r) => r.text).join('\n'),
    );
    assert.match(String(answers[1]!.json.error), /fixture exploded on purpose/);
    for (const r of await Promise.all(slow)) assert.equal(r.status, 200, r.text);
  });

  test('a handler with batching on answers every request (its requests are grouped, not concatenated)', async () => {
    const url = `${base}/v2/models/batched-handler/infer`;
    const answers = await Promise.all(['slow', 'echo', 'echo', 'echo'].map((a) => post(url, actionBody(a))));
    for (const r of answers) {
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(output(r.json as never, 'text').data, ['(unset)']);
    }
  });

  test('a handler whose load() throws is FAILED: index, metadata, readiness and infer say so', async () => {
    const index = (await server.client.repositoryIndex()).find((e) => e.name === 'broken-load');
    assert.equal(index?.state, 'FAILED');
    assert.match(String(index?.reason), /load\(\) failed: fixture load refused on purpose/);

    const meta = await fetch(`${base}/v2/models/broken-load`);
    const body = (await meta.json()) as { state: string; reason: string };
    assert.equal(body.state, 'FAILED');
    assert.match(body.reason, /fixture load refused on purpose/);
    assert.equal((await fetch(`${base}/v2/models/broken-load/ready`)).status, 503);

    const infer = await post(`${base}/v2/models/broken-load/infer`, actionBody('echo'));
    assert.equal(infer.status, 503, infer.text);
    assert.equal(infer.json.code, 'FERRY_MODEL_NOT_READY');
    assert.match(String(infer.json.error), /fixture load refused on purpose/);

    // One failed model does not make the server unready while others serve.
    assert.equal((await fetch(`${base}/v2/health/ready`)).status, 200);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    const labels = { model: 'broken-load', version: '1' };
    assert.equal(metricValue(metrics, 'ferry_model_load_failures_total', labels), 1);
    assert.equal(metricValue(metrics, 'ferry_model_ready', labels), 0);
  });

  test('a handler module without predict is FAILED with a message saying so', async () => {
    const index = (await server.client.repositoryIndex()).find((e) => e.name === 'no-predict');
    assert.equal(index?.state, 'FAILED');
    assert.match(String(index?.reason), /predict/);
    const meta = (await (await fetch(`${base}/v2/models/no-predict`)).json()) as { reason: string };
    assert.match(meta.reason, /exports no predict\(\) function/);
  });

  test('a handler that ends its worker thread fails that request; a replacement worker serves the next', async () => {
    const labels = { model: 'crashy', version: '1' };
    const exitsBefore =
      metricValue(await (await fetch(`${base}/metrics`)).text(), 'ferry_worker_exits_total', labels) ?? 0;

    const crash = await post(`${base}/v2/models/crashy/infer`, actionBody('exit'));
    assert.equal(crash.status, 500, crash.text);
    assert.equal(crash.json.code, 'FERRY_INFERENCE_FAILED');
    assert.match(String(crash.json.error), /exited \(code 3\)/);

    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.equal(metricValue(metrics, 'ferry_worker_exits_total', labels), exitsBefore + 1);
    assert.equal((await fetch(`${base}/v2/health/live`)).status, 200, 'the server process lives on');

    // Until the replacement has loaded the handler, requests are refused as not ready (never hang).
    const next = await until('a replacement worker to answer', async () => {
      const response = await post(`${base}/v2/models/crashy/infer`, actionBody('echo'));
      if (response.status === 200) return response;
      assert.equal(response.json.code, 'FERRY_MODEL_NOT_READY', response.text);
      return undefined;
    });
    assert.deepEqual(output(next.json as never, 'text').data, ['(unset)']);
  });
});
