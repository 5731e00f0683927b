#!/usr/bin/env node
// A TCP forwarder for the swarm test harness (test/swarm/harness.ts, proxy()): it runs inside a lab network
// namespace (`ip netns exec <ns> node forwarder.mjs <socket> <host> <port>`), listens on a unix socket (a file,
// reachable from the root namespace whatever namespace the listener is in) and forwards each connection to
// host:port, an address that exists only inside the lab. Prints "ready" on stdout once it listens.
// Plain JavaScript: it starts in ~50 ms without tsx.
import { rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';

const [socketPath, host, portText] = process.argv.slice(2);
const port = Number(portText);
if (!socketPath || !host || !Number.isInteger(port) || port < 1 || port > 65535) {
  process.stderr.write('usage: node forwarder.mjs <unix socket path> <host> <port>\n');
  process.exit(2);
}

const server = createServer({ allowHalfOpen: true }, (client) => {
  const upstream = connect({ host, port, allowHalfOpen: true });
  client.pipe(upstream);
  upstream.pipe(client);
  const fail = (side) => (err) => {
    process.stderr.write(`forwarder ${host}:${port}: ${side}: ${err.message}\n`);
    client.destroy();
    upstream.destroy();
  };
  client.on('error', fail('client'));
  upstream.on('error', fail('upstream'));
});

rmSync(socketPath, { force: true });
server.on('error', (err) => {
  process.stderr.write(`forwarder: cannot listen on ${socketPath}: ${err.message}\n`);
  process.exit(1);
});
server.listen(socketPath, () => process.stdout.write('ready\n'));

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close();
    rmSync(socketPath, { force: true });
    process.exit(0);
  });
}
