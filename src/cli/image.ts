/** `ferry base`, `ferry build`, `ferry push`, `ferry gateway-image`, `ferry run`: container images (src/image). */
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { FerryError } from '../core/errors.ts';
import { DEFAULT_GATEWAY_IMAGE } from '../core/gateway-image.ts';
import type { BuildImageResult, BuiltImage } from '../image/index.ts';
import { action, cliCommand, intOption } from './output.ts';

const say = (line: string) => process.stderr.write(`${line}\n`);

interface BuildOptions {
  base?: string;
  tag?: string;
  output?: string;
  push?: boolean;
  registry?: string;
  eject?: string;
  dockerfile?: boolean;
  cache: boolean;
}

export function registerImage(program: Command): void {
  program
    .command('base')
    .description("build a minimal base image from this host's Node runtime (no download), for offline builds")
    .option('--tag <name>', 'name of the base image (default ferry-base:node<version>)')
    .option('--no-engine', 'do not load it into the local Docker engine, only keep it for `ferry build`')
    .action(
      action(async (options: { tag?: string; engine: boolean }) => {
        const { baseCacheDir, defaultBaseTag, ferryBase, formatBytes } = await import('../image/index.ts');
        const started = performance.now();
        const tag = options.tag ?? defaultBaseTag(process.version);
        const result = await ferryBase({
          ociDir: baseCacheDir(tag),
          tag,
          onProgress: say,
          ...(options.engine ? { engine: await pingedEngine() } : {}),
        });
        process.stdout.write(
          [
            `base image ${result.tag}`,
            `  id      ${result.id}`,
            `  size    ${formatBytes(result.compressedSize)} compressed, ${formatBytes(result.contentSize)} of files`,
            `  node    ${result.nodeVersion}`,
            `  kept in ${baseCacheDir(result.tag)}${options.engine ? ' and the Docker engine' : ''}`,
            `  took    ${((performance.now() - started) / 1000).toFixed(1)} s`,
            result.tag === defaultBaseTag(process.version)
              ? `${cliCommand()} build and ${cliCommand()} deploy use it when no --base (or build.base in ferry.yaml) is given`
              : `Use it: ${cliCommand()} build <dir> --base ${result.tag}   (or build.base in ferry.yaml)`,
            '',
          ].join('\n'),
        );
      }),
    );

  program
    .command('build')
    .description(
      'build an OCI image of a model, without a daemon; load it into Docker, write it out, or push it',
    )
    .argument('[dir]', 'model directory', '.')
    .option('--base <ref>', 'base image: a name from `ferry base`, oci:<dir>, or a registry reference')
    .option('-t, --tag <ref>', 'image reference (default <model name>:<version>)')
    .option(
      '-o, --output <where>',
      'engine (default), oci:<dir> (OCI layout), or <file>.tar (archive)',
      'engine',
    )
    .option('--push', 'push to a registry instead (--registry or FERRY_REGISTRY)')
    .option('--registry <host[:port]>', 'registry for --push', process.env.FERRY_REGISTRY)
    .option('--eject <dir>', 'write an equivalent Dockerfile and build context to <dir> instead')
    .option('--dockerfile', 'build the equivalent Dockerfile on the Docker engine instead (not reproducible)')
    .option('--no-cache', 'rebuild every layer and reinstall npm dependencies (ignore $FERRY_HOME/cache)')
    .action(
      action(async (dir: string, options: BuildOptions) => {
        const { buildImage } = await import('../image/index.ts');
        const started = performance.now();
        // --eject and --dockerfile read the staged files after the build: keep them until then.
        const stagingDir = await mkdtemp(join(tmpdir(), 'ferry-build-'));
        try {
          const built = await buildImage({
            dir,
            ...(options.base ? { base: options.base } : {}),
            onProgress: say,
            stagingDir,
            cache: options.cache,
          });
          const tag = options.tag ?? built.tag;
          if (options.eject) {
            await eject(built, options.eject);
          } else if (options.dockerfile) {
            await buildWithDockerfile(built, tag);
          } else if (options.push) {
            await push(built, tag, options.registry);
          } else {
            await output(built, tag, options.output ?? 'engine');
          }
          // The Dockerfile path makes its own (not reproducible) image; the summary describes Ferry's.
          if (!options.dockerfile) await printSummary(built, tag, (performance.now() - started) / 1000);
        } finally {
          await rm(stagingDir, { recursive: true, force: true });
        }
      }),
    );

  program
    .command('push')
    .description(
      'build (reproducibly) and push a model image to a registry; blobs the registry has are skipped',
    )
    .argument('[dir]', 'model directory', '.')
    .option('--base <ref>', 'base image (see ferry build)')
    .option('-t, --tag <ref>', 'repository and tag in the registry (default <model name>:<version>)')
    .option('--registry <host[:port]>', 'registry', process.env.FERRY_REGISTRY)
    .action(
      action(async (dir: string, options: BuildOptions) => {
        const { buildImage } = await import('../image/index.ts');
        const started = performance.now();
        const built = await buildImage({
          dir,
          ...(options.base ? { base: options.base } : {}),
          onProgress: say,
        });
        const tag = options.tag ?? built.tag;
        await push(built, tag, options.registry);
        await printSummary(built, tag, (performance.now() - started) / 1000);
      }),
    );

  program
    .command('gateway-image')
    .description(
      "build the gateway's OCI image (`ferry gateway` alone, for a cluster), without a daemon; load it into Docker, write it out, or push it",
    )
    .option('--base <ref>', 'base image: a name from `ferry base`, oci:<dir>, or a registry reference')
    .option('-t, --tag <ref>', `image reference (default ${DEFAULT_GATEWAY_IMAGE})`)
    .option(
      '-o, --output <where>',
      'engine (default), oci:<dir> (OCI layout), or <file>.tar (archive)',
      'engine',
    )
    .option('--push', 'push to a registry instead (--registry or FERRY_REGISTRY)')
    .option('--registry <host[:port]>', 'registry for --push', process.env.FERRY_REGISTRY)
    .action(
      action(async (options: Pick<BuildOptions, 'base' | 'tag' | 'output' | 'push' | 'registry'>) => {
        const { buildGatewayImage } = await import('../image/index.ts');
        const started = performance.now();
        const built = await buildGatewayImage({
          ...(options.base ? { base: options.base } : {}),
          onProgress: say,
        });
        const tag = options.tag ?? built.tag;
        let reference = tag;
        if (options.push) reference = await push(built, tag, options.registry);
        else await output(built, tag, options.output ?? 'engine');
        await printSummary(built, tag, (performance.now() - started) / 1000);
        // What a cluster is given (`ferry k8s render --gateway-image`): pinned by digest once pushed.
        process.stdout.write(`ref     ${reference}\n`);
      }),
    );

  program
    .command('run')
    .description(
      'run a model image on the local engine: non-root, read-only, no capabilities, limits, 127.0.0.1 only',
    )
    .argument('<image>', 'image reference (e.g. iris:1)')
    .option('-p, --port <port>', 'port on 127.0.0.1', intOption('--port', 1, 65535), 8080)
    .option('--cpus <n>', 'CPU limit in cores', Number, 1)
    .option('--memory <MiB>', 'memory limit in MiB', intOption('--memory', 64, 1_048_576), 1024)
    .action(
      action(async (image: string, options: { port: number; cpus: number; memory: number }) => {
        const { createEngine, startImage } = await import('../image/index.ts');
        const engine = createEngine();
        const started = await startImage(engine, {
          image,
          port: options.port,
          cpus: options.cpus,
          memoryBytes: options.memory * 1024 * 1024,
        });
        say(`${image} is ready at ${started.url} (container ${started.id.slice(0, 12)}); Ctrl+C stops it`);
        const logs = engine.logs(started.id, { follow: true });
        logs.pipe(process.stderr);
        await new Promise<void>((resolveStop) => {
          const stop = () => void started.stop().then(resolveStop, resolveStop);
          process.once('SIGINT', stop);
          process.once('SIGTERM', stop);
        });
      }),
    );
}

async function output(built: BuiltImage, tag: string, where: string): Promise<void> {
  const { createEngine, formatBytes, loadIntoEngine, writeOciArchive, writeOciLayout } = await import(
    '../image/index.ts'
  );
  if (where === 'engine') {
    const engine = createEngine();
    const info = await loadIntoEngine(engine, built.image, tag);
    say(`loaded ${tag} into the Docker engine (${formatBytes(info.size)})`);
  } else if (where.startsWith('oci:')) {
    await writeOciLayout(resolve(where.slice(4)), built.image, tag);
    say(`wrote OCI layout ${where.slice(4)}`);
  } else if (where.endsWith('.tar')) {
    await mkdir(dirname(resolve(where)), { recursive: true });
    await writeOciArchive(built.image, tag, resolve(where));
    say(`wrote ${where} (docker load -i ${where})`);
  } else {
    throw new FerryError('FERRY_BAD_REQUEST', `--output ${where} is not engine, oci:<dir> or <file>.tar`);
  }
}

/** Pushes the image; returns its reference by digest (`host/repository:tag@sha256:...`). */
async function push(built: BuiltImage, tag: string, registry: string | undefined): Promise<string> {
  const { formatBytes, parseImageRef, RegistryClient, resolveCredentials } = await import(
    '../image/index.ts'
  );
  const ref = parseImageRef(registry && !tag.includes('/') ? `${registry}/${tag}` : tag);
  if (ref.registry === 'docker.io' && !registry) {
    throw new FerryError('FERRY_BAD_REQUEST', `no registry for ${tag}`, {
      hint: 'Pass --registry host:port (or set FERRY_REGISTRY), or tag as host:port/name:version.',
    });
  }
  const resolved = resolveCredentials(ref.registry);
  const client = new RegistryClient(ref.registry, {
    ...(resolved.credentials ? { credentials: resolved.credentials } : {}),
    ...(resolved.hint ? { credentialsHint: resolved.hint } : {}),
  });
  const result = await client.pushImage(ref.repository, ref.tag ?? 'latest', built.image, (event) => {
    if (event.type === 'blob' && event.status !== 'uploading') {
      say(
        `  ${event.status === 'exists' ? 'exists  ' : 'uploaded'} ${event.what} ${formatBytes(event.size)}`,
      );
    }
  });
  const pushed = `${ref.registry}/${ref.repository}:${ref.tag ?? 'latest'}@${result.digest}`;
  say(
    `pushed ${pushed}: ${formatBytes(result.pushedBytes)} uploaded, ${formatBytes(result.skippedBytes)} already there`,
  );
  return pushed;
}

async function eject(built: BuildImageResult, outDir: string): Promise<void> {
  const { renderDockerfile } = await import('../image/index.ts');
  const { dockerfile, context } = renderDockerfile(built.plan, { base: built.baseRef });
  const root = resolve(outDir);
  await mkdir(root, { recursive: true });
  await writeFile(join(root, 'Dockerfile'), dockerfile);
  const dirs: Array<{ path: string; mode: number }> = [];
  for (const entry of context) {
    const path = join(root, entry.path);
    if (entry.type === 'dir') {
      await mkdir(path, { recursive: true });
      dirs.push({ path, mode: entry.mode });
      continue;
    }
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, 'file' in entry.source ? await readFile(entry.source.file) : entry.source);
    await chmod(path, entry.mode);
  }
  // Directory modes last (deepest first), once they are filled: some are read-only.
  for (const d of dirs.sort((a, b) => b.path.length - a.path.length)) await chmod(d.path, d.mode);
  say(
    `wrote ${join(outDir, 'Dockerfile')} and its context; build it with: docker build --network host -t ${built.tag} ${outDir}`,
  );
}

/** Builds the ejected Dockerfile and context on the engine (the context goes as a gzip tar, made in memory). */
async function buildWithDockerfile(built: BuildImageResult, tag: string): Promise<void> {
  const { buildLayer, createEngine, renderDockerfile } = await import('../image/index.ts');
  const { dockerfile, context } = renderDockerfile(built.plan, { base: built.baseRef });
  const tar = await buildLayer(
    [...context, { type: 'file', path: 'Dockerfile', mode: 0o644, source: Buffer.from(dockerfile) }],
    'docker build context',
  );
  const engine = createEngine();
  const { id } = await engine.buildDockerfile(tar.blob, tag, {
    network: 'host',
    onProgress: (event) => {
      if (event.type === 'step') say(`step ${event.index}/${event.total}: ${event.instruction}`);
    },
  });
  process.stdout.write(`image   ${tag}\nid      ${id}\nbuilt from the equivalent Dockerfile on the engine\n`);
}

async function printSummary(built: BuiltImage, tag: string, seconds: number): Promise<void> {
  const { formatBytes } = await import('../image/index.ts');
  process.stdout.write(
    [
      `image   ${tag}`,
      `id      ${built.image.configDigest}`,
      `digest  ${built.image.manifestDigest}`,
      `base    ${built.baseRef} (${built.baseLayers} layers)`,
      `layers  ${built.layerSizes.map((l) => `${l.name} ${formatBytes(l.compressed)}`).join(', ')}`,
      `size    ${formatBytes(built.addedBytes)} compressed on top of the base`,
      `took    ${seconds.toFixed(1)} s`,
      '',
    ].join('\n'),
  );
}

async function pingedEngine() {
  const { createEngine } = await import('../image/index.ts');
  const engine = createEngine();
  await engine.ping();
  return engine;
}
