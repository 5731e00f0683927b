import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkAddress, registryAllowed } from './ssrf.ts';

test('addresses: metadata, link-local, unspecified and multicast are refused; the rest pass', () => {
  const refused = [
    '169.254.169.254',
    '169.254.0.1',
    '100.100.100.200',
    'fd00:ec2::254',
    'fe80::1',
    '[fe80::1]',
    '::ffff:169.254.169.254',
    '::ffff:a9fe:a9fe',
    '0:0:0:0:0:ffff:a9fe:a9fe',
    'FE80:0:0:0:0:0:0:1',
    '0.0.0.0',
    '::',
    '224.0.0.1',
    '255.255.255.255',
    'ff02::1',
    'not-an-ip',
    '169.254.1',
  ];
  for (const address of refused) assert.equal(checkAddress(address).allowed, false, address);
  const allowed = [
    '127.0.0.1',
    '10.0.0.5',
    '192.168.1.10',
    '172.16.0.1',
    '8.8.8.8',
    '::1',
    '2001:db8::1',
    '::ffff:127.0.0.1',
    '::ffff:7f00:1',
  ];
  for (const address of allowed) assert.equal(checkAddress(address).allowed, true, address);
  const verdict = checkAddress('169.254.169.254');
  assert.match(!verdict.allowed ? verdict.reason : '', /link-local \(cloud metadata lives there\)/);
});

test('registries: exact host[:port], a host rule for every port, *.domain suffixes; empty list allows all', () => {
  const list = ['127.0.0.1:5000', 'registry.internal', '*.corp.example'];
  assert.equal(registryAllowed('127.0.0.1:5000', list), true);
  assert.equal(registryAllowed('127.0.0.1:5001', list), false, 'another port of an exact host:port rule');
  assert.equal(registryAllowed('registry.internal:443', list), true, 'a host rule covers its ports');
  assert.equal(registryAllowed('Registry.Internal', list), true, 'case-insensitive');
  assert.equal(registryAllowed('eu.corp.example:5000', list), true);
  assert.equal(registryAllowed('corp.example', list), false, 'the suffix rule needs a subdomain');
  assert.equal(registryAllowed('evilcorp.example', list), false);
  assert.equal(registryAllowed('docker.io', list), false);
  assert.equal(registryAllowed('anything:1', []), true);
});
