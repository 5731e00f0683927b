/** Shared by integration tests: temporary model directories and in-process servers on free ports. */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { OipClient } from '../src/client/index.ts';
import { freePort } from '../src/core/free-port.ts';
import { type RunningServer, startServer } from '../src/server/index.ts';
import { HANG_MS } from './hang.ts';

export { freePort };

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

export { HANG_MS };
export const FERRY_BIN = join(ROOT, 'bin', 'ferry.js');

/**
 * A fresh directory under the system's temp dir. Under root it lets others through (0711, not listable): process
 * replicas then run as an unprivileged user (src/runtime/process-runtime.ts) and must reach the model
 * directories and sockets tests make here.
 */
export function tempDir(prefix = 'ferry-test-'): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  if (process.getuid?.() === 0) chmodSync(path, 0o711);
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** Writes a model directory: ferry.yaml text plus files (bytes or text) by relative path. */
export function writeModelDir(
  dir: string,
  spec: string,
  files: Record<string, Uint8Array | string> = {},
): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'ferry.yaml'), spec);
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), content);
  }
  return dir;
}

export function onnxSpec(name: string, extra = '', version = '1'): string {
  return `apiVersion: ferry.dev/v1alpha1
kind: Model
model:
  name: ${name}
  version: "${version}"
  format: onnx
  file: model.onnx
${extra}`;
}

export interface TestServer extends RunningServer {
  client: OipClient;
}

/** Starts a server in this process on a free port, with logs silenced unless FERRY_TEST_LOGS is set. */
export async function serve(
  paths: string[],
  options: { watch?: boolean; maxBodyBytes?: number } = {},
): Promise<TestServer> {
  const logger = pino({ level: process.env.FERRY_TEST_LOGS ? 'debug' : 'silent' });
  const server = await startServer({ paths, host: '127.0.0.1', port: 0, logger, ...options });
  return Object.assign(server, { client: new OipClient(server.url) });
}

export async function post(url: string, body: string | Buffer, headers: Record<string, string> = {}) {
  const response = await fetch(url, {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/json', ...headers },
  });
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json: json as Record<string, unknown> };
}

/** Runs the ferry CLI as a child process; resolves with its exit code and output. */
export function runCli(args: string[], options: { cwd?: string; env?: Record<string, string> } = {}) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [FERRY_BIN, ...args], {
      cwd: options.cwd ?? ROOT,
      env: { ...process.env, FERRY_LOG_LEVEL: 'warn', ...options.env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Starts `ferry serve` as a child process and waits until /v2/health/ready answers 200. */
export async function spawnServer(
  args: string[],
  timeoutMs = HANG_MS,
  env: Record<string, string> = {},
): Promise<{ child: ChildProcess; url: string; output: () => string }> {
  const port = await freePort();
  const child = spawn(process.execPath, [FERRY_BIN, 'serve', ...args, '--port', String(port)], {
    cwd: ROOT,
    env: { ...process.env, FERRY_LOG_LEVEL: 'info', ...env },
  });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`ferry serve exited with ${child.exitCode}:\n${output}`);
    try {
      if ((await fetch(`${url}/v2/health/ready`)).status === 200) return { child, url, output: () => output };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`ferry serve did not become ready within ${timeoutMs} ms:\n${output}`);
}

/**
 * Polls probe (every 100 ms) until it gives a value other than undefined or false; fails naming `what`
 * after `ms` (a hang guard, see HANG_MS).
 */
export async function until<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  ms = HANG_MS,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
