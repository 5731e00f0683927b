import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { logTicks, niceTicks, renderChart } from './chart.ts';
import { processCpuMs, treeCpuMs } from './cpu.mjs';
import { runLoad } from './load.ts';
import { ferryYaml, writeModelDir } from './modeldir.ts';
import { binaryInferBody, checkInfer, jsonInferBody, readInferResponse, seededData } from './oip.ts';
import { REPO_ROOT } from './options.ts';
import { freePort, startProcess } from './process.ts';
import { buildRequest, frameResponse, RawHttpConnection } from './raw-http.mjs';
import { checkGoal, formatTable, ratio } from './report.ts';

const FLOOR = join(REPO_ROOT, 'bench', 'baselines', 'floor.mjs');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function startFloor() {
  const port = await freePort();
  const proc = await startProcess({
    name: 'floor',
    command: process.execPath,
    args: [FLOOR, '--port', String(port)],
    readyUrl: `http://127.0.0.1:${port}/v2/health/ready`,
    readyTimeoutMs: 20_000,
  });
  return { proc, base: `http://127.0.0.1:${port}` };
}

describe('oip bodies', () => {
  const data = new Float32Array([1.5, -2, 3.25, 4]);
  const input = { name: 'x', shape: [1, 4], data };

  it('binary body: padded JSON header, binary_data_size, raw little-endian bytes after it', () => {
    const { body, headers } = binaryInferBody([input]);
    const hl = Number(headers['inference-header-content-length']);
    assert.equal(hl % 8, 0);
    assert.equal(body.length, hl + 16);
    const head = JSON.parse(body.subarray(0, hl).toString('utf8'));
    assert.deepEqual(head.inputs[0], {
      name: 'x',
      datatype: 'FP32',
      shape: [1, 4],
      parameters: { binary_data_size: 16 },
    });
    assert.equal(head.parameters.binary_data_output, true);
    assert.deepEqual(
      [0, 1, 2, 3].map((i) => body.readFloatLE(hl + 4 * i)),
      [1.5, -2, 3.25, 4],
    );
  });

  it('unaligned binary body puts the tensor at an offset that is not a multiple of 4', () => {
    const { headers } = binaryInferBody([input], { align: false, binaryOutput: false });
    assert.notEqual(Number(headers['inference-header-content-length']) % 4, 0);
  });

  it('json body carries the numbers', () => {
    const parsed = JSON.parse(jsonInferBody([input]).body.toString('utf8'));
    assert.deepEqual(parsed.inputs[0].data, [1.5, -2, 3.25, 4]);
  });

  it('reads binary and JSON responses', () => {
    const head = Buffer.from(
      JSON.stringify({
        outputs: [
          { name: 'a', datatype: 'FP32', shape: [2], parameters: { binary_data_size: 8 } },
          { name: 'b', datatype: 'FP32', shape: [1], data: [7] },
        ],
      }),
    );
    const raw = Buffer.alloc(8);
    raw.writeFloatLE(0.5, 0);
    raw.writeFloatLE(-1, 4);
    const outs = readInferResponse(
      Buffer.concat([head, raw]),
      new Headers({ 'inference-header-content-length': String(head.length) }),
    );
    assert.deepEqual(
      outs.map((o) => [o.name, o.data]),
      [
        ['a', [0.5, -1]],
        ['b', [7]],
      ],
    );
  });

  it('seeded data is deterministic and in [0, 1)', () => {
    const a = seededData(100, 3);
    assert.deepEqual(a, seededData(100, 3));
    assert.notDeepEqual(a, seededData(100, 4));
    assert.ok(a.every((v) => v >= 0 && v < 1));
  });
});

describe('report', () => {
  it('aligns columns: text left, numbers right, missing as "-"', () => {
    const text = formatTable(
      [
        { key: 'name', title: 'name' },
        { key: 'rps', title: 'rps', digits: 0 },
      ],
      [
        { name: 'floor', rps: 55123.4 },
        { name: 'fastapi-long', rps: 9 },
        { name: 'x', rps: null },
      ],
    );
    assert.equal(
      text,
      [
        'name             rps',
        '------------  ------',
        'floor         55,123',
        'fastapi-long       9',
        'x                  -',
      ].join('\n'),
    );
  });

  it('checks goals and leaves unmeasured ones undecided', () => {
    assert.equal(checkGoal({ name: 'r', value: 0.81, op: '>=', target: 0.8 }).pass, true);
    assert.equal(checkGoal({ name: 'r', value: 0.79, op: '>=', target: 0.8 }).pass, false);
    assert.equal(checkGoal({ name: 'p', value: 2, op: '<', target: 2 }).pass, false);
    assert.equal(checkGoal({ name: 'r', value: null, op: '>=', target: 1 }).pass, null);
    assert.equal(ratio(1, 0), null);
    assert.equal(ratio(3, 2), 1.5);
  });
});

describe('model dir', () => {
  it('writes ferry.yaml in the agreed format and model.onnx', async () => {
    const text = ferryYaml({
      name: 'add',
      bytes: new Uint8Array(),
      batching: { maxBatchSize: 32, maxQueueDelayMs: 0 },
    });
    assert.deepEqual(parse(text), {
      apiVersion: 'ferry.dev/v1alpha1',
      kind: 'Model',
      model: { name: 'add', version: '1', format: 'onnx', file: 'model.onnx' },
      serving: { batching: { maxBatchSize: 32, maxQueueDelay: '0ms' }, concurrency: 1, threads: 1 },
    });
    // No section: the server's default; false: off whatever the default.
    assert.equal(parse(ferryYaml({ name: 'a', bytes: new Uint8Array() })).serving.batching, undefined);
    assert.equal(
      parse(ferryYaml({ name: 'a', bytes: new Uint8Array(), batching: false })).serving.batching,
      false,
    );
    const dir = await writeModelDir({ name: 'm', bytes: new Uint8Array([1, 2, 3]) });
    try {
      assert.deepEqual([...readFileSync(join(dir.dir, 'model.onnx'))], [1, 2, 3]);
      assert.equal(readFileSync(join(dir.dir, 'ferry.yaml'), 'utf8'), dir.yaml);
    } finally {
      await dir.cleanup();
    }
    assert.equal(existsSync(dir.dir), false);
  });
});

describe('cpu', () => {
  it('reads CPU time of this process and its tree; null for a missing pid', () => {
    let x = 0;
    for (let i = 0; i < 2e7; i++) x += i; // burn some CPU so the counter is above zero
    assert.ok(x > 0);
    const own = processCpuMs(process.pid);
    assert.ok(own !== null && own > 0);
    const tree = treeCpuMs([process.pid]);
    assert.ok(tree !== null && tree >= own);
    assert.equal(processCpuMs(2 ** 22 + 12345), null);
    assert.equal(treeCpuMs([2 ** 22 + 12345]), null);
  });
});

describe('processes and load', () => {
  it('starts the floor, loads it through autocannon, checks answers, and stops it by PID', async () => {
    const { proc, base } = await startFloor();
    try {
      assert.ok(alive(proc.pid));
      const url = `${base}/v2/models/add/infer`;
      const req = { body: Buffer.from('{"inputs":[]}'), headers: { 'content-type': 'application/json' } };
      await checkInfer(url, req, 'y', [2, 4, 6, 8]);
      await assert.rejects(checkInfer(url, req, 'y', [2, 4, 6, 9]), /output "y"\[3\] = 8, expected 9/);
      await assert.rejects(checkInfer(url, req, 'z', [1]), /no output named "z"/);
      const r = await runLoad({
        url,
        body: req.body,
        headers: req.headers,
        connections: 2,
        durationS: 1,
        cpuPids: [proc.pid],
      });
      assert.ok(r.requests > 0);
      assert.equal(r.non2xx, 0);
      assert.equal(r.errors, 0);
      assert.deepEqual(Object.keys(r.statusCodes), ['200']);
      assert.ok(r.p50Ms <= r.p99Ms && r.p99Ms <= r.maxMs);
      assert.ok(r.serverCpuMs !== null && r.serverCpuMs >= 0);
    } finally {
      await proc.stop();
    }
    assert.equal(proc.exited(), true);
    assert.equal(alive(proc.pid), false);
  });

  it('refuses targets other than 127.0.0.1', () => {
    assert.throws(
      () => runLoad({ url: 'http://example.com/', connections: 1, durationS: 1 }),
      /127\.0\.0\.1/,
    );
  });

  it('reports a child that exits before it is ready, with its output', async () => {
    const port = await freePort();
    await assert.rejects(
      startProcess({
        name: 'broken',
        command: process.execPath,
        args: ['-e', 'console.error("boom: no model"); process.exit(3)'],
        readyUrl: `http://127.0.0.1:${port}/`,
      }),
      (e: Error) => /broken exited \(code 3\)/.test(e.message) && /boom: no model/.test(e.message),
    );
  });

  it('gives up after the readiness timeout and stops the child', async () => {
    const port = await freePort();
    // The child is found by a marker in its command line, not by a pid it prints: on a busy machine it
    // may not have printed anything within the 500 ms.
    const marker = `bench-silent-${process.pid}-${Date.now()}`;
    const withMarker = () =>
      readdirSync('/proc')
        .filter((p) => /^\d+$/.test(p))
        .filter((p) => {
          try {
            return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(marker);
          } catch {
            return false; // gone meanwhile
          }
        });
    await assert.rejects(
      startProcess({
        name: 'silent',
        command: process.execPath,
        args: ['-e', 'setInterval(() => {}, 1000)', marker],
        readyUrl: `http://127.0.0.1:${port}/`,
        readyTimeoutMs: 500,
      }),
      (e: Error) => /silent was not ready within 500 ms/.test(e.message),
    );
    assert.deepEqual(withMarker(), [], 'the child still runs');
  });
});

describe('chart', () => {
  it('draws one row per server, n/a where nothing was measured, with nice axes', () => {
    assert.deepEqual(niceTicks(41_000), [0, 10_000, 20_000, 30_000, 40_000, 50_000]);
    assert.deepEqual(niceTicks(0.9), [0, 0.2, 0.4, 0.6, 0.8, 1]);
    assert.deepEqual(logTicks(0.023, 254), [0.01, 0.1, 1, 10, 100, 1000]);
    const svg = renderChart({
      title: 'S1 <test> & more',
      rows: [
        { label: 'floor', rps: 40_000, p50Ms: 1.1, p99Ms: 4.7 },
        { label: 'kserve', note: 'n/a: not installed' },
      ],
    });
    assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    assert.match(svg, /S1 &lt;test&gt; &amp; more/);
    assert.match(svg, />40,000</);
    assert.match(svg, />4\.70</);
    assert.equal((svg.match(/>n\/a</g) ?? []).length, 2, 'throughput and latency both say n/a for kserve');
    assert.ok(svg.trimEnd().endsWith('</svg>'));
  });
});

describe('raw-http', () => {
  it('frames responses by Content-Length and by chunks, and waits for the rest', () => {
    const cl = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello');
    assert.deepEqual(frameResponse(cl), { status: 200, end: cl.length, bodyStart: cl.length - 5 });
    assert.equal(frameResponse(cl.subarray(0, cl.length - 1)), null);
    const chunked = Buffer.from(
      'HTTP/1.1 503 X\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nHTTP/1.1',
    );
    assert.deepEqual(frameResponse(chunked), {
      status: 503,
      end: chunked.length - 8,
      bodyStart: chunked.indexOf('\r\n\r\n') + 4,
    });
    assert.throws(() => frameResponse(Buffer.from('HTTP/1.1 200 OK\r\n\r\n')), /without Content-Length/);
  });

  it('sends a precomputed request over one keep-alive connection, again and again', async () => {
    const floor = await startFloor();
    try {
      const port = Number(new URL(floor.base).port);
      const conn = await RawHttpConnection.connect('127.0.0.1', port);
      const req = buildRequest({ host: `127.0.0.1:${port}`, path: '/v2/health/ready' });
      for (let i = 0; i < 3; i++) assert.equal((await conn.request(req)).status, 200);
      const infer = buildRequest({
        method: 'POST',
        host: `127.0.0.1:${port}`,
        path: '/v2/models/add/infer',
        body: '{}',
      });
      const r = await conn.request(infer);
      assert.equal(JSON.parse(r.body.toString()).model_name, 'add');
      conn.close();
    } finally {
      await floor.proc.stop();
    }
  });
});
