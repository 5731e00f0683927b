import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type ColdStartMoments, coldStartMessage, coldStartView, phasesLine } from './cold-start.ts';

const moments = (over: Partial<ColdStartMoments> = {}): ColdStartMoments => ({
  deployment: 'iris',
  revision: 2,
  replica: 'iris-2-0-abcde',
  decidedAt: 10_000,
  imageReadyAt: null,
  startedAt: 10_020,
  startup: {
    processStartedAt: 10_025,
    listeningAt: 10_200,
    modelLoadStartedAt: 10_150,
    modelLoadedAt: 10_260,
    warmedAt: 10_270,
    readyAt: 10_271,
  },
  readyAt: 10_400,
  releasedAt: 10_402,
  held: 3,
  ...over,
});

test('each phase runs from one moment to the next, and they add up to the total', () => {
  const v = coldStartView(moments());
  assert.deepEqual(v.phases, {
    image: null,
    start: 20,
    boot: 180,
    load: 60,
    warmup: 11,
    ready: 129,
    release: 2,
  });
  assert.equal(v.totalMs, 402);
  assert.equal(
    Object.values(v.phases).reduce((a, b) => a! + b!, 0),
    v.totalMs,
  );
  assert.equal(v.at, 10_000);
  assert.equal(v.held, 3);
});

test('a moment reported before the one before it counts as no time (a server up before docker start returned)', () => {
  const m = moments({ startedAt: 10_300 });
  const v = coldStartView(m);
  assert.equal(v.phases.start, 300);
  assert.equal(v.phases.boot, 0);
  assert.equal(v.phases.load, 0);
  assert.equal(v.phases.warmup, 0);
  assert.equal(v.phases.ready, 100);
  assert.equal(v.totalMs, 402);
});

test('a loaded model that finished loading before the listener opened: its load is covered by boot', () => {
  const v = coldStartView(
    moments({ startup: { ...moments().startup!, modelLoadedAt: 10_180, warmedAt: 10_190, readyAt: 10_205 } }),
  );
  assert.equal(v.phases.boot, 180);
  assert.equal(v.phases.load, 0);
  assert.equal(v.phases.warmup, 5);
});

test('a server without the startup report: the server phases are unknown, the time is in ready', () => {
  const v = coldStartView(moments({ startup: null }));
  assert.deepEqual(v.phases, {
    image: null,
    start: 20,
    boot: null,
    load: null,
    warmup: null,
    ready: 380,
    release: 2,
  });
  assert.equal(v.totalMs, 402);
  assert.equal(phasesLine(v), 'start 0.02 s, ready 0.38 s, release 0.00 s');
});

test("an image still being built when the decision came: its wait is the image phase, not the runtime's start", () => {
  // The image was ready 2 s after the decision; the container started 20 ms after that.
  const late = coldStartView(moments({ imageReadyAt: 12_000, startedAt: 12_020 }));
  assert.equal(late.phases.image, 2000);
  assert.equal(late.phases.start, 20);
  assert.match(phasesLine(late), /^image 2\.00 s, start 0\.02 s, /);
  // An image ready before the decision (prepared at zero) is no phase.
  const ready = coldStartView(moments({ imageReadyAt: 9_000 }));
  assert.equal(ready.phases.image, null);
  assert.doesNotMatch(phasesLine(ready), /image/);
});

test('the event says when it was ready and released, the phases and the held requests', () => {
  assert.equal(
    coldStartMessage('acme/iris', coldStartView(moments())),
    'cold start of iris: ready 0.40 s after the decision to start it, held requests released at 0.40 s ' +
      '(revision 2, iris-2-0-abcde; start 0.02 s, boot 0.18 s, load 0.06 s, warmup 0.01 s, ready 0.13 s, ' +
      'release 0.00 s; 3 request(s) held)',
  );
});
