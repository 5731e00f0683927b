import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { LoadReporter } from './load-report.ts';

test('reports go to the control plane with the token; one that fails is sent again with the next', async () => {
  const received: Array<{
    auth: string | undefined;
    body: { samples: Array<{ arrivals: number }>; held: unknown };
  }> = [];
  let answer = 204;
  const server = createServer((req, res) => {
    let text = '';
    req.on('data', (d) => {
      text += d;
    });
    req.on('end', () => {
      received.push({ auth: req.headers.authorization, body: JSON.parse(text) });
      res.writeHead(answer).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  let arrivals = 0;
  const reporter = new LoadReporter({
    url: `http://127.0.0.1:${port}/v1/gateway/load`,
    token: 'gw-token',
    gateway: 'node-1',
    everyMs: 60_000,
    source: {
      loadSamples: () => [
        { deployment: 'iris', revision: 1, at: 0, periodMs: 1000, concurrency: 1, arrivals: ++arrivals },
      ],
      heldSamples: () => [{ deployment: 'iris', held: 2 }],
    },
  });
  try {
    answer = 503;
    await reporter.report();
    answer = 204;
    await reporter.report();
    await reporter.report();
    assert.equal(received.length, 3);
    assert.ok(received.every((r) => r.auth === 'Bearer gw-token'));
    assert.deepEqual(
      received.map((r) => r.body.samples.map((s) => s.arrivals)),
      [[1], [1, 2], [3]],
      'the refused report went again with the next, then not again',
    );
    assert.deepEqual(received[2]!.body.held, [{ deployment: 'iris', held: 2 }]);
  } finally {
    reporter.stop();
    server.close();
  }
});
