import assert from 'node:assert/strict';
import { test } from 'node:test';
import { lineTime, toStored } from './log-archive.ts';

test('a stored line keeps its text without terminal control sequences', () => {
  const esc = String.fromCharCode(27);
  const raw = `${esc}[0;93m2026-12-07 05:01:50.31 [W:onnxruntime] Failed to persist telemetry device ID${esc}[m`;
  assert.deepEqual(toStored({ stream: 'stderr', line: raw }, 42), {
    at: 42,
    stream: 'stderr',
    line: '2026-12-07 05:01:50.31 [W:onnxruntime] Failed to persist telemetry device ID',
  });
  assert.equal(toStored({ stream: 'stdout', line: `a${esc}[2Jb${esc}[1;1Hc` }, 0).line, 'abc');
});

test("a JSON line's time is its pino time; any other line takes the fallback", () => {
  assert.equal(lineTime('{"level":30,"time":1796619552681,"msg":"x"}', 1), 1796619552681);
  assert.equal(lineTime('plain text', 7), 7);
});
