/** Runs Node scripts inside running containers (tests of what a sealed replica can reach). */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import type { DockerEngine } from '../src/image/engine/index.ts';

/**
 * Runs a Node script inside a running container (as its user), returns what it printed. The image's entry
 * point is its node binary, so the script runs with the same node as the server.
 */
export async function execNode(engine: DockerEngine, id: string, script: string): Promise<string> {
  const container = engine.docker.getContainer(id);
  const info = await container.inspect();
  const node = [...(info.Config.Entrypoint ?? []), ...(info.Config.Cmd ?? [])].find((a) => /node$/.test(a));
  assert.ok(node, `a node binary in the image's command line: ${JSON.stringify(info.Config.Entrypoint)}`);
  const exec = await container.exec({ Cmd: [node, '-e', script], AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({ hijack: true, stdin: false });
  const out = new PassThrough();
  const err = new PassThrough();
  let text = '';
  let errText = '';
  out.on('data', (d) => (text += d));
  err.on('data', (d) => (errText += d));
  engine.docker.modem.demuxStream(stream, out, err);
  await new Promise<void>((resolve, reject) => {
    stream.on('end', () => resolve());
    stream.on('error', reject);
  });
  const done = await exec.inspect();
  assert.equal(done.ExitCode, 0, `the script failed: ${errText}`);
  return text;
}
