import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { asRun, chooseCliCommand, type Invocation } from './output.ts';

const clone = '/home/me/ferry';
const bin = `${clone}/bin/ferry.js`;
const base: Invocation = {
  script: bin,
  realScript: bin,
  ferryOnPath: undefined,
  npmCommand: undefined,
  cwd: clone,
};

describe('chooseCliCommand: the command hints show', () => {
  test('through npx (npm exec): npx ferry, though npx put its own ferry on the PATH', () => {
    const npx = `/root/.npm/_npx/5ae5/node_modules/.bin/ferry`;
    assert.equal(
      chooseCliCommand({ ...base, script: npx, ferryOnPath: bin, npmCommand: 'exec' }),
      'npx ferry',
    );
  });

  test('through npm run ferry: npx ferry (works from the same directories)', () => {
    assert.equal(chooseCliCommand({ ...base, npmCommand: 'run-script' }), 'npx ferry');
  });

  test('the ferry on the PATH is this script (npm link, global install): ferry', () => {
    assert.equal(chooseCliCommand({ ...base, script: '/usr/local/bin/ferry', ferryOnPath: bin }), 'ferry');
    assert.equal(
      chooseCliCommand({ ...base, ferryOnPath: bin }),
      'ferry',
      'also when run as node bin/ferry.js',
    );
  });

  test('another ferry is on the PATH (another clone or version): node <this script>', () => {
    assert.equal(
      chooseCliCommand({ ...base, ferryOnPath: '/usr/lib/node_modules/ferry/bin/ferry.js' }),
      'node bin/ferry.js',
    );
  });

  test('no ferry on the PATH, run from the clone: node bin/ferry.js', () => {
    assert.equal(chooseCliCommand(base), 'node bin/ferry.js');
    assert.equal(chooseCliCommand({ ...base, cwd: `${clone}/examples` }), `node ${bin}`, 'outside: absolute');
  });

  test('npm start, npm test: not npx, the node command', () => {
    assert.equal(chooseCliCommand({ ...base, npmCommand: 'start' }), 'node bin/ferry.js');
  });
});

describe('asRun: commands named in messages from the platform, as this user runs the CLI', () => {
  test('`ferry <command>` becomes the command that works; other uses of the word stay', () => {
    assert.equal(
      asRun('ferry get models lists them; an admin makes more with ferry token create.', 'npx ferry'),
      'npx ferry get models lists them; an admin makes more with npx ferry token create.',
    );
    assert.equal(
      asRun('(ferry describe iris) and `ferry logs iris`', 'node bin/ferry.js'),
      '(node bin/ferry.js describe iris) and `node bin/ferry.js logs iris`',
    );
    assert.equal(
      asRun('Ferry is up; ferry.yaml is fine; the ferry server', 'npx ferry'),
      'Ferry is up; ferry.yaml is fine; the ferry server',
    );
    assert.equal(asRun('ferry get models', 'ferry'), 'ferry get models');
    assert.equal(
      asRun("Run 'npx ferry up' first", 'npx ferry'),
      "Run 'npx ferry up' first",
      'said right already',
    );
  });
});
