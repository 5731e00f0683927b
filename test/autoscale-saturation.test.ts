/**
 * Batching-aware autoscaling live (issue 11), on the process runtime: a replica reports its own load (GET
 * /ferry/load: how full its batches ran), the control plane polls it, and a deployment whose replica's batches
 * are full scales up although the requests in flight stay far below its target. The model is built so its
 * worker, not HTTP, is what limits it: a deep ONNX stack (one thread, ~10 ms a batch, batches of at most 4), 16
 * clients one request after another. The test waits on conditions, never on time: a busy machine only makes the
 * worker the bottleneck more. Traffic only to 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { addVersionFromDir } from '../src/cli/upload.ts';
import { ControlClient } from '../src/control/index.ts';
import { LOAD_PATH, type LoadReport } from '../src/core/replica.ts';
import { type Platform, startPlatform } from '../src/platform/index.ts';
import { replicaGetJson } from '../src/runtime/index.ts';
import { buildModel } from '../tools/onnx/builder.ts';
import { mulberry32 } from '../tools/onnx/models.ts';
import { onnxSpec, tempDir, until, writeModelDir } from './helpers.ts';

const WIDTH = 1024;
const LAYERS = 200;
const CLIENTS = 16;
const MAX_BATCH = 4;
/** Far above what CLIENTS requests in flight make: only the replica's own fullness can ask for more. */
const TARGET = 1000;

/**
 * x FP32 [N,4] -> MatMul [4,W] -> (MatMul [W,W] -> Relu) x LAYERS, one shared weight -> MatMul [W,4] -> y:
 * heavy compute (about 10 ms a batch on one thread, hardly more for 4 rows than for 1) from a 4 MB file and
 * small requests, so the worker is what limits the replica.
 */
function deepModel(): Uint8Array {
  const random = mulberry32(7);
  const matrix = (rows: number, cols: number) => {
    const m = new Float32Array(rows * cols);
    const limit = Math.sqrt(6 / rows);
    for (let i = 0; i < m.length; i++) m[i] = (random() * 2 - 1) * limit;
    return m;
  };
  const nodes = [{ op: 'MatMul', inputs: ['x', 'w_in'], outputs: ['h0'] }];
  for (let l = 0; l < LAYERS; l++) {
    nodes.push({ op: 'MatMul', inputs: [`h${l}`, 'w'], outputs: [`m${l}`] });
    nodes.push({ op: 'Relu', inputs: [`m${l}`], outputs: [`h${l + 1}`] });
  }
  nodes.push({ op: 'MatMul', inputs: [`h${LAYERS}`, 'w_out'], outputs: ['y'] });
  return buildModel({
    graphName: 'deep',
    inputs: [{ name: 'x', elemType: 'FLOAT', dims: ['N', 4] }],
    outputs: [{ name: 'y', elemType: 'FLOAT', dims: ['N', 4] }],
    initializers: [
      { name: 'w_in', dims: [4, WIDTH], data: matrix(4, WIDTH) },
      { name: 'w', dims: [WIDTH, WIDTH], data: matrix(WIDTH, WIDTH) },
      { name: 'w_out', dims: [WIDTH, 4], data: matrix(WIDTH, 4) },
    ],
    nodes,
  });
}

const BODY = JSON.stringify({
  inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [0.1, 0.2, 0.3, 0.4] }],
});

describe('batching-aware autoscaling on the process runtime', () => {
  const home = tempDir('ferry-autoscale-sat-');
  let platform: Platform;
  let client: ControlClient;

  before(async () => {
    const dir = writeModelDir(
      join(home.path, 'deep'),
      onnxSpec(
        'deep',
        `serving:\n  threads: 1\n  batching: { maxBatchSize: ${MAX_BATCH}, maxQueueDelay: 0ms }\n  timeout: 60s\n`,
      ),
      { 'model.onnx': deepModel() },
    );
    platform = await startPlatform({
      home: join(home.path, 'home'),
      runtime: 'process',
      apiPort: 0,
      gatewayPort: 0,
      resyncMs: 300,
    });
    client = new ControlClient({ url: platform.apiUrl, token: platform.adminToken! });
    await client.createModel('deep');
    await addVersionFromDir(client, 'deep', '1', dir);
    await client.deploy({ name: 'deep', model: 'deep', version: '1', replicas: 1, public: true });
    await until('a ready replica', async () =>
      (await client.replicas('deep')).some((r) => r.state === 'ready'),
    );
  });

  after(async () => {
    await platform?.stop({ removeReplicas: true });
    home.remove();
  });

  test('a replica whose batches are full is at capacity: scaled up with requests in flight far below target', async () => {
    const [replica] = (await client.replicas('deep')).filter((r) => r.state === 'ready');
    const report = async () => (await replicaGetJson(replica!.url, LOAD_PATH, 5000)) as LoadReport;
    const idle = await report();
    assert.equal(idle.models.length, 1);
    assert.deepEqual(
      {
        workers: idle.models[0]!.workers,
        batchSize: idle.models[0]!.batchSize,
        pipelineDepth: idle.models[0]!.pipelineDepth,
      },
      { workers: 1, batchSize: MAX_BATCH, pipelineDepth: 2 },
    );

    await client.setScaling('deep', {
      minReplicas: 1,
      maxReplicas: 2,
      target: TARGET,
      targetUtilization: 0.5,
      stableWindowMs: 10_000,
      panicWindowMs: 2_000,
    });
    const replicaLoad = platform.controller.loop.replicaLoad!;

    const statuses: number[] = [];
    let stop = false;
    const clients = Array.from({ length: CLIENTS }, async () => {
      while (!stop) {
        const res = await fetch(`${platform.gatewayUrl}/v2/models/deep/infer`, {
          method: 'POST',
          body: BODY,
          headers: { 'content-type': 'application/json' },
        });
        await res.arrayBuffer();
        statuses.push(res.status);
      }
    });
    try {
      // The replica's own measure: batches fuller than one request, filled executor time.
      const loaded = await until('the replica reports full batches', async () => {
        const r = (await report()).models[0]!;
        const i = idle.models[0]!;
        return r.batches - i.batches >= 20 && (r.samples - i.samples) / (r.batches - i.batches) > 1 && r;
      });
      assert.ok(loaded.fillMs > idle.models[0]!.fillMs);
      const saturation = await until('the control plane measures its saturation', () => {
        const s = replicaLoad.saturation('deep', 1);
        return s !== undefined && s > 0 && s;
      });
      console.log(
        `# saturation ${saturation.toFixed(2)}, average batch ${((loaded.samples - idle.models[0]!.samples) / (loaded.batches - idle.models[0]!.batches)).toFixed(2)} of ${MAX_BATCH}, full-batch time ${loaded.batchServiceMs?.toFixed(1)} ms`,
      );
      // The capacity the replicas report, live: 1 worker x 4 x 2 batches in flight.
      assert.equal(replicaLoad.derivedTarget('deep', 1, 'concurrency'), 1 * MAX_BATCH * 2);

      await until('scaled to 2', async () => (await client.getDeployment('deep')).replicas === 2);
    } finally {
      stop = true;
      await Promise.all(clients);
    }
    // CLIENTS requests in flight at most, against an aim of TARGET x 0.5 per replica: the gateway's count alone
    // wants 1 replica; the replica's full batches asked for the second.
    assert.ok(CLIENTS < TARGET * 0.5);
    const events = await client.events({ deployment: 'deep' });
    const scaled = events.find((e) => e.reason === 'Autoscaled' && /1 -> 2/.test(e.message));
    assert.ok(scaled, JSON.stringify(events.map((e) => e.message)));
    console.log(`# ${scaled.message}`);
    const failed = statuses.filter((s) => s !== 200);
    assert.deepEqual(failed, [], `${failed.length} of ${statuses.length} failed`);
  });
});
