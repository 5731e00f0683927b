import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseReplicaUrl, routeTableProblems } from './routes.ts';

test('replica urls: http://host:port or unix:<absolute socket path>', () => {
  assert.deepEqual(parseReplicaUrl('http://127.0.0.1:8080'), { host: '127.0.0.1', port: 8080 });
  assert.deepEqual(parseReplicaUrl('http://[::1]:81/x'), { host: '::1', port: 81 });
  assert.deepEqual(parseReplicaUrl('unix:/var/lib/ferry/sockets/r1/ferry.sock'), {
    host: '/var/lib/ferry/sockets/r1/ferry.sock',
    port: 0,
    socketPath: '/var/lib/ferry/sockets/r1/ferry.sock',
  });
  for (const bad of [
    'unix:relative/ferry.sock',
    'unix:',
    'unix:/a/../b.sock',
    'unix:/a/./b.sock',
    `unix:/${'x'.repeat(107)}`,
    'unix:/a\0b',
    'ftp://x',
    'https://127.0.0.1:1',
    42,
  ])
    assert.equal(parseReplicaUrl(bad), null, String(bad));
});

test('a route table names a bad replica url with where it is and what is allowed', () => {
  const problems = routeTableProblems({
    deployments: [
      {
        name: 'd',
        revisions: [
          {
            revision: 1,
            percent: 100,
            shadow: 0,
            servedName: 'm',
            replicas: [
              { id: 'a', url: 'unix:/run/ferry/a.sock', ready: true },
              { id: 'b', url: 'unix:run/b.sock', ready: true },
            ],
          },
        ],
      },
    ],
  });
  assert.equal(problems.length, 1, problems.join('\n'));
  assert.match(
    problems[0]!,
    /revisions\[0\]\.replicas\[1\]\.url: 'unix:run\/b\.sock' is neither http:\/\/<host>:<port> nor unix:<absolute socket path>/,
  );
});
