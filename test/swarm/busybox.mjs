// A tiny image for the swarm tests, built offline: Debian's busybox-static (one static binary, ~2 MB) with a
// symlink per applet (sh, httpd, nslookup, wget, ...), as a root file system tarball for `docker import`.
// The package is downloaded (`apt-get download`), never installed: installing busybox-static would replace a
// `busybox` package the machine may have. It is kept in <repo>/.ferry/cache/busybox-static (git-ignored).
// Plain JavaScript: scripts/ensure-deps.mjs --test fetches it before the tests run (so a failing download is a
// set-up error, not a test failure); test/swarm/harness.test.ts calls the same function.
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { aptGet } from '../../scripts/apt.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BUSYBOX_CACHE = join(ROOT, '.ferry', 'cache', 'busybox-static');

function works(binary) {
  return spawnSync(binary, ['--list'], { encoding: 'utf8' }).status === 0;
}

/** The path of a static busybox binary (downloaded once into the cache). */
export async function ensureBusyboxStatic(log = () => {}) {
  const binary = join(BUSYBOX_CACHE, 'bin', 'busybox');
  if (existsSync(binary) && works(binary)) return binary;
  if (spawnSync('apt-get', ['--version']).error) {
    throw new Error(
      'busybox-static is needed for the swarm tests and this is not a Debian system (no apt-get)',
    );
  }
  mkdirSync(BUSYBOX_CACHE, { recursive: true });
  const work = mkdtempSync(join(BUSYBOX_CACHE, 'download-'));
  try {
    const download = () =>
      spawnSync('apt-get', ['download', '-q', 'busybox-static'], { cwd: work, encoding: 'utf8' });
    let result = download();
    if (result.status !== 0) {
      // A fresh machine may have no package lists yet.
      log(`apt-get download busybox-static failed (${(result.stderr ?? '').trim()}); updating the lists`);
      await aptGet(log, ['update', '-q'], Date.now() + 20 * 60_000);
      result = download();
    }
    if (result.status !== 0)
      throw new Error(`apt-get download busybox-static failed: ${(result.stderr ?? '').trim()}`);
    const deb = readdirSync(work).find((f) => f.startsWith('busybox-static') && f.endsWith('.deb'));
    if (!deb) throw new Error(`apt-get download busybox-static left no .deb in ${work}`);
    const extracted = join(work, 'x');
    const x = spawnSync('dpkg-deb', ['-x', join(work, deb), extracted], { encoding: 'utf8' });
    if (x.status !== 0) throw new Error(`dpkg-deb -x ${deb} failed: ${x.stderr}`);
    const found = join(extracted, 'bin', 'busybox');
    if (!works(found)) throw new Error(`${deb} has no working bin/busybox`);
    mkdirSync(dirname(binary), { recursive: true });
    renameSync(found, binary);
    log(`busybox-static from ${deb} in ${binary}`);
    return binary;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * Writes a root file system tarball: /bin/busybox, a symlink per applet, /tmp, /etc/passwd and /etc/group,
 * plus `files` ({ 'www/cgi-bin/x': { content, mode } }, paths relative to /). Returns the tarball's path.
 */
export async function busyboxRootfs(outputTar, files = {}, log = () => {}) {
  const busybox = await ensureBusyboxStatic(log);
  const root = mkdtempSync(join(dirname(outputTar), 'rootfs-'));
  try {
    mkdirSync(join(root, 'bin'));
    spawnSync('cp', [busybox, join(root, 'bin', 'busybox')]);
    const applets = spawnSync(busybox, ['--list'], { encoding: 'utf8' }).stdout.split('\n');
    for (const applet of applets) {
      if (applet !== '' && applet !== 'busybox') symlinkSync('busybox', join(root, 'bin', applet));
    }
    for (const dir of ['etc', 'tmp', 'www']) mkdirSync(join(root, dir), { recursive: true });
    chmodSync(join(root, 'tmp'), 0o1777);
    writeFileSync(
      join(root, 'etc', 'passwd'),
      'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n',
    );
    writeFileSync(join(root, 'etc', 'group'), 'root:x:0:\nnogroup:x:65534:\n');
    for (const [path, { content, mode = 0o644 }] of Object.entries(files)) {
      const target = join(root, path);
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, content);
      chmodSync(target, mode);
    }
    const tar = spawnSync('tar', ['-C', root, '--numeric-owner', '-cf', outputTar, '.'], {
      encoding: 'utf8',
    });
    if (tar.status !== 0) throw new Error(`tar of the busybox root file system failed: ${tar.stderr}`);
    return outputTar;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
