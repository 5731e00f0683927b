/**
 * Test helper: a real OCI registry (Debian's `docker-registry`, distribution 2.8) on 127.0.0.1 at a free port,
 * storing into a temporary directory, optionally with htpasswd (bcrypt) basic auth. Installs the package
 * with apt-get when it is missing. Stopped by PID; its directory is removed.
 *
 *   const reg = await startTestRegistry({ auth: { username: 'u', password: 'p' } });
 *   ... new RegistryClient(reg.host, { credentials: ... }) ...
 *   await reg.stop();
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../../core/free-port.ts';

const run = promisify(execFile);
const REGISTRY_BIN = '/usr/bin/docker-registry';

export interface TestRegistry {
  /** "127.0.0.1:<port>" */
  host: string;
  /** The registry's data directory (blobs land under docker/registry/v2/). */
  dataDir: string;
  pid: number;
  stop(): Promise<void>;
}

async function aptInstall(pkg: string): Promise<void> {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  try {
    await run('apt-get', ['install', '-y', pkg], { env });
  } catch {
    await run('apt-get', ['update'], { env });
    await run('apt-get', ['install', '-y', pkg], { env });
  }
}

export async function ensureRegistryInstalled(): Promise<void> {
  if (!existsSync(REGISTRY_BIN)) await aptInstall('docker-registry');
}

/** A bcrypt htpasswd line: htpasswd -Bbn (apache2-utils), else Python's crypt (libxcrypt does bcrypt). */
async function htpasswdLine(username: string, password: string): Promise<string> {
  try {
    if (!existsSync('/usr/bin/htpasswd')) await aptInstall('apache2-utils');
    const { stdout } = await run('htpasswd', ['-Bbn', username, password]);
    return stdout.trim();
  } catch {
    const { stdout } = await run('python3', [
      '-c',
      'import crypt,sys; print(sys.argv[1] + ":" + crypt.crypt(sys.argv[2], crypt.mksalt(crypt.METHOD_BLOWFISH)))',
      username,
      password,
    ]);
    return stdout.trim();
  }
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of running) p.kill('SIGKILL');
});

export interface TestRegistryOptions {
  /** htpasswd (Basic) auth with this one user. */
  auth?: { username: string; password: string };
  /** Bearer token auth: tokens come from `realm`, are JWTs signed by the key of the PEM cert `rootCertBundle`. */
  token?: { realm: string; service: string; issuer: string; rootCertBundle: string };
}

export async function startTestRegistry(options: TestRegistryOptions = {}): Promise<TestRegistry> {
  await ensureRegistryInstalled();
  const dir = mkdtempSync(join(tmpdir(), 'ferry-registry-'));
  const dataDir = join(dir, 'data');
  mkdirSync(dataDir);
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  // Every answer of this registry carries this header: a registry someone else started on the same port
  // (it took the port between freePort() and ours binding it) is never taken for ours.
  const identity = randomBytes(8).toString('hex');
  let auth = '';
  if (options.auth) {
    writeFileSync(
      join(dir, 'htpasswd'),
      `${await htpasswdLine(options.auth.username, options.auth.password)}\n`,
    );
    auth = `auth:\n  htpasswd:\n    realm: ferry-test\n    path: ${join(dir, 'htpasswd')}\n`;
  } else if (options.token) {
    const t = options.token;
    auth = `auth:\n  token:\n    realm: ${t.realm}\n    service: ${t.service}\n    issuer: ${t.issuer}\n    rootcertbundle: ${t.rootCertBundle}\n`;
  }
  const config = `version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${dataDir}
  delete:
    enabled: true
http:
  addr: ${host}
  headers:
    X-Ferry-Test-Registry: [${identity}]
${auth}`;
  writeFileSync(join(dir, 'config.yml'), config);
  const logFile = join(dir, 'registry.log');
  const log = openSync(logFile, 'w');
  const child = spawn(REGISTRY_BIN, ['serve', join(dir, 'config.yml')], { stdio: ['ignore', log, log] });
  running.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let gone = false;
  void exited.then(() => {
    gone = true;
    running.delete(child);
  });

  const stop = async () => {
    if (!gone && child.pid !== undefined) {
      process.kill(child.pid, 'SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };

  // Wait until it answers /v2/ (200 open, 401 with auth); give up after 30 s with its log.
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (gone) break;
    try {
      const res = await fetch(`http://${host}/v2/`);
      await res.body?.cancel();
      const ours = res.headers.get('x-ferry-test-registry') === identity;
      if (ours && (res.status === 200 || res.status === 401)) {
        return { host, dataDir, pid: child.pid!, stop };
      }
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const text = existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-2000) : '';
  await stop();
  throw new Error(`docker-registry did not start on ${host}:\n${text}`);
}
