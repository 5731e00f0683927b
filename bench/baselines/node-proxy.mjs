// The Node.js floor for bench/gateway.ts: the textbook reverse proxy in plain node:http (a server, and
// http.request over a keep-alive Agent to one upstream), rewriting /v2/models/<deployment>/ to
// /v2/models/<served>/ and piping both bodies. No routing, balancing, retries or metrics: what any Node
// proxy pays before doing anything of its own, next to nginx (C) and the Ferry gateway.
//
//   node bench/baselines/node-proxy.mjs --port 8002 --upstream http://127.0.0.1:8001 --deployment d --served m
import { Agent, createServer, request } from 'node:http';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '8002' },
    host: { type: 'string', default: '127.0.0.1' },
    upstream: { type: 'string' },
    deployment: { type: 'string' },
    served: { type: 'string' },
  },
});
const upstream = new URL(values.upstream);
const from = `/v2/models/${values.deployment}/`;
const to = `/v2/models/${values.served}/`;
const agent = new Agent({ keepAlive: true, maxSockets: 256 });

const server = createServer((req, res) => {
  const path = req.url.startsWith(from) ? to + req.url.slice(from.length) : req.url;
  const headers = { ...req.headers, host: upstream.host };
  delete headers.connection;
  const up = request(
    { host: upstream.hostname, port: upstream.port, method: req.method, path, headers, agent },
    (answer) => {
      res.writeHead(answer.statusCode, answer.headers);
      answer.pipe(res);
    },
  );
  up.on('error', () => {
    if (!res.headersSent) res.writeHead(502).end();
    else res.destroy();
  });
  req.pipe(up);
});
server.keepAliveTimeout = 60_000;
server.listen(Number(values.port), values.host, () => {
  process.stdout.write(`node-proxy listening on http://${values.host}:${values.port}\n`);
});
for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => server.close(() => process.exit(0)));
