// The HTTP floor for S1: a minimal node:http server that reads the whole request body and answers
// a fixed OIP v2 JSON response. No parsing, no model: whatever Ferry adds on top of this is its
// protocol, validation and inference cost.
//
//   node bench/baselines/floor.mjs --port 8001 [--host 127.0.0.1]
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { port: { type: 'string', default: '8001' }, host: { type: 'string', default: '127.0.0.1' } },
});

const INFER = Buffer.from(
  JSON.stringify({
    model_name: 'add',
    model_version: '1',
    outputs: [{ name: 'y', datatype: 'FP32', shape: [1, 4], data: [2, 4, 6, 8] }],
  }),
);
const READY = Buffer.alloc(0);

const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    if (req.method === 'GET') {
      res.writeHead(200, { 'content-length': READY.length });
      res.end(READY);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': INFER.length });
    res.end(INFER);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(Number(values.port), values.host, () => {
  process.stdout.write(`floor listening on http://${values.host}:${values.port}\n`);
});
for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => server.close(() => process.exit(0)));
