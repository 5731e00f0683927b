/**
 * Hot-path regression guard (issue 9): how many system calls `ferry serve` makes per inference request, against
 * a committed budget (test/budgets/hot-path.json). Counts, not time, so it holds on a busy machine: the server
 * of bench/s1-overhead.ts (the add model, [N,4], default settings) answers WARMUP requests on one keep-alive
 * connection, then strace attaches to all its threads (`strace -f -yy -p <pid>`) for the next REQUESTS, so only
 * the measured window is counted. Socket writes are the write-family calls (write, writev, sendto, sendmsg) on
 * that connection's socket, told apart from eventfd and pipe writes by strace's -yy fd annotations.
 *
 * strace comes from Debian (`node scripts/ensure-deps.mjs --test` installs it).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { writeModelDir } from '../bench/lib/modeldir.ts';
import { tinyAdd } from '../bench/lib/models.ts';
import { buildRequest, RawHttpConnection } from '../bench/lib/raw-http.mjs';
import { HANG_MS } from './hang.ts';
import { ROOT, spawnServer, tempDir, until } from './helpers.ts';

const BUDGET_FILE = join(ROOT, 'test', 'budgets', 'hot-path.json');

interface Budget {
  /** Requests counted (after the warm-up). */
  requests: number;
  warmup: number;
  /** Budgets: the most the server may do, per request. */
  socketWritesPerResponse: number;
  socketReadsPerRequest: number;
  otherWritesPerRequest: number;
  syscallsPerRequest: number;
}

const WRITES = new Set(['write', 'writev', 'sendto', 'sendmsg', 'pwrite64', 'pwritev', 'pwritev2']);
const READS = new Set(['read', 'readv', 'recvfrom', 'recvmsg', 'pread64', 'preadv', 'preadv2']);

interface SyscallCount {
  total: number;
  byName: Map<string, number>;
  /** Write-family calls on the measured connection's socket. */
  socketWrites: number;
  /** Read-family calls on it. */
  socketReads: number;
  /** Write-family calls on anything else (eventfd wake-ups of libuv, pipes, logs). */
  otherWrites: number;
}

/**
 * Count the calls in an `strace -f -yy -o` trace. A call interrupted by another thread's ("<unfinished ...>")
 * counts once, at its start; its "<... resumed>" line and signal or exit lines do not count. `connection` is the
 * -yy annotation of the measured socket, e.g. "TCP:[127.0.0.1:8080->127.0.0.1:40000]".
 */
function countSyscalls(trace: string, connection: string): SyscallCount {
  const count: SyscallCount = {
    total: 0,
    byName: new Map(),
    socketWrites: 0,
    socketReads: 0,
    otherWrites: 0,
  };
  const onConnection = `<${connection}>`;
  for (const line of trace.split('\n')) {
    const m = /^(?:\[pid\s+)?\d+\]?\s+([a-z_][a-z0-9_]*)\((.*)$/.exec(line);
    if (!m) continue; // "<... x resumed>", "--- SIGINT ---", "+++ exited +++", blank
    const name = m[1] as string;
    const args = m[2] as string;
    count.total++;
    count.byName.set(name, (count.byName.get(name) ?? 0) + 1);
    const fdEnd = args.indexOf('>, ');
    const fd = fdEnd > 0 ? args.slice(args.indexOf('<'), fdEnd + 1) : '';
    if (WRITES.has(name)) {
      if (fd === onConnection) count.socketWrites++;
      else count.otherWrites++;
    } else if (READS.has(name) && fd === onConnection) count.socketReads++;
  }
  return count;
}

test('countSyscalls reads strace -f -yy output: each call once, socket calls by their connection', () => {
  const conn = 'TCP:[127.0.0.1:18202->127.0.0.1:52976]';
  const trace = [
    '23528 epoll_pwait(26<anon_inode:[eventpoll]>,  <unfinished ...>',
    '23501 epoll_pwait(14<anon_inode:[eventpoll]>, [...], 1024, 0, NULL, 8) = 1',
    `23501 read(34<${conn}>, ""..., 65536) = 225`,
    '23501 write(23<anon_inode:[eventfd]>, ""..., 8) = 8',
    '23528 <... epoll_pwait resumed>[...], 1024, 5467, NULL, 8) = 1',
    '23527 read(23<anon_inode:[eventfd]>, ""..., 1024) = 8',
    `23501 writev(34<${conn}>, [...], 3) = 292`,
    '23501 writev(35<TCP:[127.0.0.1:18202->127.0.0.1:52977]>, [...], 3) = 292',
    '23501 --- SIGINT {si_signo=SIGINT, si_code=SI_USER, si_pid=1, si_uid=0} ---',
    '23513 +++ exited with 0 +++',
    '',
  ].join('\n');
  const c = countSyscalls(trace, conn);
  assert.equal(c.total, 7);
  assert.deepEqual(Object.fromEntries(c.byName), { epoll_pwait: 2, read: 2, write: 1, writev: 2 });
  assert.equal(c.socketWrites, 1);
  assert.equal(c.socketReads, 1);
  assert.equal(c.otherWrites, 2);
});

function straceMissing(): string | null {
  const r = spawnSync('strace', ['-V'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    return 'strace is not installed: `node scripts/ensure-deps.mjs --test` installs it (Debian package strace)';
  }
  return null;
}

/** Attach strace to every thread of pid, writing the trace to file; resolves once it is attached. */
async function attachStrace(pid: number, file: string): Promise<{ stop(): Promise<string> }> {
  const child: ChildProcess = spawn('strace', ['-f', '-yy', '-s', '0', '-o', file, '-p', String(pid)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d) => {
    stderr += d;
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  // strace says "Process <pid> attached" (with its thread count) once every thread is stopped and traced.
  await until(
    'strace to attach',
    () => {
      if (child.exitCode !== null) {
        throw new Error(
          `strace -p ${pid} exited with ${child.exitCode}: ${stderr.trim()} ` +
            '(attaching needs ptrace: root, or kernel.yama.ptrace_scope 0, or CAP_SYS_PTRACE in a container)',
        );
      }
      return /Process \d+ attached/.test(stderr);
    },
    HANG_MS,
  );
  return {
    async stop() {
      child.kill('SIGINT'); // detaches from every thread and exits
      await exited;
      return stderr;
    },
  };
}

test('the hot path stays within its syscall budget (test/budgets/hot-path.json)', {
  timeout: HANG_MS,
}, async (t) => {
  const missing = straceMissing();
  assert.equal(missing, null, missing ?? '');
  const budget = JSON.parse(readFileSync(BUDGET_FILE, 'utf8')) as Budget;
  const model = tinyAdd();
  const dir = await writeModelDir({ name: model.name, bytes: model.bytes });
  const tmp = tempDir('ferry-hot-path-');
  let server: Awaited<ReturnType<typeof spawnServer>> | null = null;
  let conn: RawHttpConnection | null = null;
  try {
    server = await spawnServer([dir.dir, '--host', '127.0.0.1']);
    const port = Number(new URL(server.url).port);
    const pid = server.child.pid as number;
    conn = await RawHttpConnection.connect('127.0.0.1', port);
    const request = buildRequest({
      method: 'POST',
      host: `127.0.0.1:${port}`,
      path: `/v2/models/${model.name}/infer`,
      headers: { 'content-type': 'application/json' },
      body: `{"inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]}]}`,
    });
    const first = await conn.request(request);
    assert.equal(first.status, 200, first.body.toString());
    assert.deepEqual(JSON.parse(first.body.toString()).outputs[0].data, [2, 4, 6, 8]);
    for (let i = 1; i < budget.warmup; i++) await conn.request(request);

    const traceFile = join(tmp.path, 'trace');
    const strace = await attachStrace(pid, traceFile);
    let failed = 0;
    try {
      for (let i = 0; i < budget.requests; i++) {
        if ((await conn.request(request)).status !== 200) failed++;
      }
    } finally {
      await strace.stop();
    }
    assert.equal(failed, 0, `${failed} of ${budget.requests} requests did not answer 200`);

    const connection = `TCP:[127.0.0.1:${port}->127.0.0.1:${conn.localPort}]`;
    const c = countSyscalls(readFileSync(traceFile, 'utf8'), connection);
    assert.ok(
      c.socketWrites >= budget.requests,
      `strace saw ${c.socketWrites} writes on ${connection} for ${budget.requests} responses: every response ` +
        'needs one, so the trace was not read right (did strace -yy annotate the socket differently?)',
    );
    const n = budget.requests;
    const measured = {
      socketWritesPerResponse: c.socketWrites / n,
      socketReadsPerRequest: c.socketReads / n,
      otherWritesPerRequest: c.otherWrites / n,
      // futex calls are lock hand-offs between threads: their number follows the machine's load (0.2 per
      // request on a quiet machine, up to 2.6 on a busy one), not the code, so they are left out of the budget.
      syscallsPerRequest: (c.total - (c.byName.get('futex') ?? 0)) / n,
    };
    const top = [...c.byName.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 14)
      .map(([name, k]) => `${name} ${(k / n).toFixed(2)}`)
      .join(', ');
    t.diagnostic(
      `per request over ${n} (after ${budget.warmup} of warm-up): socket writes ${measured.socketWritesPerResponse.toFixed(2)}, ` +
        `socket reads ${measured.socketReadsPerRequest.toFixed(2)}, other writes ${measured.otherWritesPerRequest.toFixed(2)}, ` +
        `syscalls other than futex ${measured.syscallsPerRequest.toFixed(2)} (${top})`,
    );

    const what: Record<keyof typeof measured, string> = {
      socketWritesPerResponse: 'socket writes per response (write/writev/sendto/sendmsg on the connection)',
      socketReadsPerRequest: 'socket reads per request (read/readv/recvfrom/recvmsg on the connection)',
      otherWritesPerRequest:
        'other writes per request (eventfd wake-ups between the HTTP thread and the model worker, pipes, logs)',
      syscallsPerRequest: 'system calls per request other than futex (all threads of the server)',
    };
    const over = (Object.keys(measured) as (keyof typeof measured)[]).filter((k) => measured[k] > budget[k]);
    assert.deepEqual(
      over.map((k) => `${k} ${measured[k].toFixed(2)} > ${budget[k]}`),
      [],
      over
        .map(
          (k) =>
            `hot path over budget: ${measured[k].toFixed(2)} ${what[k]}, budget ${budget[k]} (test/budgets/hot-path.json). ` +
            `A change added work to every request: trace one with \`strace -f -yy -p <pid of ferry serve>\` while sending ` +
            'it, and remove what is new; if the cost is intended, raise the budget in test/budgets/hot-path.json and ' +
            'say why in the commit.',
        )
        .join('\n'),
    );
    for (const k of Object.keys(measured) as (keyof typeof measured)[]) {
      if (measured[k] < budget[k] * 0.6) {
        t.diagnostic(
          `${k} is ${measured[k].toFixed(2)}, well under its budget of ${budget[k]}: tighten test/budgets/hot-path.json`,
        );
      }
    }
  } finally {
    conn?.close();
    server?.child.kill('SIGTERM');
    if (server && server.child.exitCode === null) {
      await new Promise((resolve) => server?.child.once('exit', resolve));
    }
    await dir.cleanup();
    tmp.remove();
  }
});
