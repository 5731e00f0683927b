import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GatewayLoads, STALE_MS } from './gateway-load.ts';

const sample = (revision: number, concurrency: number, arrivals: number, periodMs = 1000) => ({
  deployment: 'iris',
  revision,
  at: 0,
  periodMs,
  concurrency,
  arrivals,
});

test('reports of several gateways read as one: in flight and arrivals summed over the period', () => {
  let now = 1000;
  const loads = new GatewayLoads(() => now);
  now = 2000;
  loads.report({ gateway: 'n1', samples: [sample(1, 2, 10)], held: [] });
  loads.report({ gateway: 'n2', samples: [sample(1, 3, 15), sample(2, 1, 4)], held: [] });
  const out = loads.loadSamples(now);
  assert.deepEqual(
    out.map((s) => ({
      revision: s.revision,
      concurrency: s.concurrency,
      arrivals: s.arrivals,
      periodMs: s.periodMs,
    })),
    [
      { revision: 1, concurrency: 5, arrivals: 25, periodMs: 1000 },
      { revision: 2, concurrency: 1, arrivals: 4, periodMs: 1000 },
    ],
  );
  // The next period starts empty.
  now = 3000;
  assert.deepEqual(loads.loadSamples(now), []);
});

test('two reports of one gateway in a longer period weigh by the time each covers', () => {
  let now = 0;
  const loads = new GatewayLoads(() => now);
  now = 2000;
  loads.report({ gateway: 'n1', samples: [sample(1, 4, 8)], held: [] });
  loads.report({ gateway: 'n1', samples: [sample(1, 2, 4)], held: [] });
  const [s] = loads.loadSamples(now);
  assert.equal(s?.concurrency, 3);
  assert.equal(s?.arrivals, 12);
});

test('held requests: the latest count per gateway, summed; a silent gateway holds nothing', () => {
  let now = 0;
  const loads = new GatewayLoads(() => now);
  assert.equal(loads.report({ gateway: 'n1', samples: [], held: [{ deployment: 'iris', held: 2 }] }), true);
  assert.equal(loads.report({ gateway: 'n2', samples: [], held: [{ deployment: 'iris', held: 3 }] }), true);
  assert.equal(loads.report({ gateway: 'n1', samples: [], held: [{ deployment: 'iris', held: 1 }] }), true);
  assert.deepEqual(loads.heldSamples(), [{ deployment: 'iris', held: 4 }]);
  now = STALE_MS + 1;
  assert.equal(loads.report({ gateway: 'n2', samples: [], held: [] }), false);
  assert.deepEqual(loads.heldSamples(), []);
});

test('arrivals: a counter per revision over every report, not reset by loadSamples; gone deployments forgotten', () => {
  const loads = new GatewayLoads(() => 0);
  const sample = (deployment: string, arrivals: number) => ({
    deployment,
    revision: 1,
    at: 0,
    periodMs: 1000,
    concurrency: 0,
    arrivals,
  });
  loads.report({ gateway: 'a', samples: [sample('iris', 3), sample('old', 1)], held: [] });
  loads.loadSamples(1000);
  loads.report({ gateway: 'b', samples: [sample('iris', 4)], held: [] });
  assert.deepEqual(
    loads.arrivals((d) => d !== 'old'),
    [{ deployment: 'iris', revision: 1, arrivals: 7 }],
  );
});
