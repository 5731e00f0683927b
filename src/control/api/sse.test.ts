import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SseReader } from './sse.ts';

test('events split anywhere, comments skipped, data lines joined, CRLF and CR line ends', () => {
  const reader = new SseReader();
  const text =
    'event: snapshot\ndata: {"a":\ndata: 1}\n\n: ping\n\nevent: point\r\ndata: 2\r\n\r\ndata: 3\r\rdata\n\n';
  const events = [];
  for (let i = 0; i < text.length; i += 3) events.push(...reader.push(text.slice(i, i + 3)));
  assert.deepEqual(events, [
    { event: 'snapshot', data: '{"a":\n1}' },
    { event: 'point', data: '2' },
    { event: 'message', data: '3' },
    { event: 'message', data: '' },
  ]);
});
