import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FerryError } from '../core/errors.ts';
import { decodeInferRequest, decodeInferResponse, encodeInferRequest, encodeInferResponse } from './codec.ts';
import { numberToFp16 } from './datatypes.ts';
import { BINARY_HEADER, type Datatype, type InferRequest, type Tensor, type TensorData } from './types.ts';

const LIMITS = { maxBodyBytes: 1 << 20 };
const JSON_HEADERS = { contentType: 'application/json' };

const bytes = (...strings: string[]) => strings.map((s) => new Uint8Array(Buffer.from(s, 'utf8')));

/** One tensor per datatype, with edge values, shaped [2, 3] or [n]. */
const SAMPLES: Record<Datatype, TensorData> = {
  BOOL: new Uint8Array([1, 0, 1, 1, 0, 0]),
  UINT8: new Uint8Array([0, 1, 2, 127, 128, 255]),
  UINT16: new Uint16Array([0, 1, 2, 300, 32768, 65535]),
  UINT32: new Uint32Array([0, 1, 2, 70000, 2 ** 31, 2 ** 32 - 1]),
  UINT64: new BigUint64Array([0n, 1n, 2n ** 53n + 1n, 2n ** 63n, 12345678901234567890n, 2n ** 64n - 1n]),
  INT8: new Int8Array([-128, -1, 0, 1, 100, 127]),
  INT16: new Int16Array([-32768, -1, 0, 1, 1000, 32767]),
  INT32: new Int32Array([-(2 ** 31), -1, 0, 1, 123456789, 2 ** 31 - 1]),
  INT64: new BigInt64Array([
    -(2n ** 63n),
    -(2n ** 53n) - 1n,
    0n,
    2n ** 53n + 1n,
    9007199254740993n,
    2n ** 63n - 1n,
  ]),
  FP16: new Uint16Array([0x3c00, 0x8000, 0x7c00, 0xfc00, 0x0001, numberToFp16(0.1)]),
  FP32: new Float32Array([0.1, -2.5, 3.4028234663852886e38, Number.NEGATIVE_INFINITY, 1e-45, -0]),
  FP64: new Float64Array([0.1, Number.MAX_VALUE, 5e-324, Number.POSITIVE_INFINITY, 1 / 3, -0]),
  BYTES: bytes('héllo', '', '日本語', '😀 emoji', 'a"b\\c\n', 'plain'),
};

function sampleTensor(datatype: Datatype, shape = [2, 3]): Tensor {
  return { name: `t_${datatype.toLowerCase()}`, datatype, shape, data: SAMPLES[datatype] };
}

function plain(data: TensorData): unknown[] {
  return Array.isArray(data)
    ? data.map((b) => Buffer.from(b).toString('hex'))
    : Array.from(data as ArrayLike<unknown>);
}

function assertSameTensors(actual: Tensor[], expected: Tensor[]) {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    assert.equal(a.name, e.name);
    assert.equal(a.datatype, e.datatype);
    assert.deepEqual(a.shape, e.shape);
    assert.equal(a.data.constructor, e.data.constructor, `${e.name} array type`);
    assert.deepEqual(plain(a.data), plain(e.data), `${e.name} data`);
  }
}

function decodeEncoded(encoded: { body: Buffer; headers: Record<string, string> }): InferRequest {
  return decodeInferRequest(
    encoded.body,
    { contentType: encoded.headers['content-type'], inferenceHeaderLength: encoded.headers[BINARY_HEADER] },
    LIMITS,
  );
}

function expectError(fn: () => unknown, code: string, pattern: RegExp) {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof FerryError, `not a FerryError: ${error}`);
    assert.equal(error.code, code, error.message);
    assert.match(error.message, pattern);
    assert.ok(error.status >= 400 && error.status < 500);
    return true;
  });
}

const jsonBody = (value: unknown) => Buffer.from(JSON.stringify(value));
const decodeJson = (value: unknown, limits = LIMITS) =>
  decodeInferRequest(jsonBody(value), JSON_HEADERS, limits);

describe('request round trips', () => {
  const tensors = (Object.keys(SAMPLES) as Datatype[]).map((d) => sampleTensor(d));

  for (const binary of [false, true]) {
    it(`every datatype survives ${binary ? 'binary' : 'JSON'} encoding`, () => {
      const request: InferRequest = { id: 'r1', parameters: { priority: 2 }, inputs: tensors };
      const encoded = encodeInferRequest(request, { binary });
      assert.equal(encoded.headers['content-type'], binary ? 'application/octet-stream' : 'application/json');
      if (binary) assert.equal(Number(encoded.headers[BINARY_HEADER]) % 8, 0, 'header padded to 8');
      const decoded = decodeEncoded(encoded);
      assert.equal(decoded.id, 'r1');
      assert.deepEqual(decoded.parameters, { priority: 2 });
      assertSameTensors(decoded.inputs, tensors);
    });

    it(`empty tensors with a 0 dim survive ${binary ? 'binary' : 'JSON'} encoding`, () => {
      const empty = (Object.keys(SAMPLES) as Datatype[]).map((d) => ({
        name: `e_${d}`,
        datatype: d,
        shape: [0, 3],
        data: d === 'BYTES' ? [] : new (SAMPLES[d].constructor as new (n: number) => TensorData)(0),
      }));
      assertSameTensors(decodeEncoded(encodeInferRequest({ inputs: empty }, { binary })).inputs, empty);
    });
  }

  it('reads INT64/UINT64 beyond 2^53 exactly from JSON numbers', () => {
    const text =
      '{"inputs":[{"name":"a","datatype":"INT64","shape":[3],"data":[9223372036854775807,-9007199254740993,"-5"]},' +
      '{"name":"b","datatype":"UINT64","shape":[1],"data":[18446744073709551615]},' +
      '{"name":"c","datatype":"FP64","shape":[1],"data":[12345678901234567890]}]}';
    const decoded = decodeInferRequest(Buffer.from(text), {}, LIMITS);
    assert.deepEqual(Array.from(decoded.inputs[0]!.data as BigInt64Array), [
      2n ** 63n - 1n,
      -9007199254740993n,
      -5n,
    ]);
    assert.deepEqual(Array.from(decoded.inputs[1]!.data as BigUint64Array), [2n ** 64n - 1n]);
    assert.deepEqual(Array.from(decoded.inputs[2]!.data as Float64Array), [Number('12345678901234567890')]);
    // ... and prints them as exact digits.
    const out = encodeInferResponse({ model_name: 'm', outputs: decoded.inputs }, undefined).body.toString();
    assert.match(out, /"data":\[9223372036854775807,-9007199254740993,-5\]/);
    assert.match(out, /"data":\[18446744073709551615\]/);
  });

  it('flattens nested JSON data and writes flat data', () => {
    const decoded = decodeJson({
      inputs: [
        {
          name: 'x',
          datatype: 'FP32',
          shape: [2, 2, 2],
          data: [
            [
              [1, 2],
              [3, 4],
            ],
            [
              [5, 6],
              [7, 8],
            ],
          ],
        },
      ],
    });
    assert.deepEqual(Array.from(decoded.inputs[0]!.data as Float32Array), [1, 2, 3, 4, 5, 6, 7, 8]);
    const out = JSON.parse(
      encodeInferResponse({ model_name: 'm', outputs: decoded.inputs }, decoded).body.toString(),
    );
    assert.deepEqual(out.outputs[0].data, [1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('writes NaN and infinities as strings and reads them back; BOOL as true/false; FP32 short', () => {
    const outputs: Tensor[] = [
      {
        name: 'f',
        datatype: 'FP32',
        shape: [5],
        data: new Float32Array([Number.NaN, Infinity, -Infinity, 0.1, -0]),
      },
      {
        name: 'h',
        datatype: 'FP16',
        shape: [2],
        data: new Uint16Array([numberToFp16(Number.NaN), numberToFp16(0.5)]),
      },
      { name: 'b', datatype: 'BOOL', shape: [2], data: new Uint8Array([1, 0]) },
    ];
    const text = encodeInferResponse(
      { model_name: 'm', model_version: '1', id: 'x', outputs },
      undefined,
    ).body.toString();
    const doc = JSON.parse(text);
    assert.deepEqual(doc.outputs[0].data, ['NaN', 'Infinity', '-Infinity', 0.1, -0]);
    assert.deepEqual(doc.outputs[1].data, ['NaN', 0.5]);
    assert.deepEqual(doc.outputs[2].data, [true, false]);
    const back = decodeInferResponse(Buffer.from(text), { contentType: 'application/json' });
    assert.equal(back.model_version, '1');
    assert.equal(back.id, 'x');
    assertSameTensors(back.outputs, outputs);
  });

  it('round-trips large FP32/FP64 tensors (native printer path) with special values', () => {
    const n = 5000;
    const f32 = new Float32Array(n).map((_, i) => Math.fround(Math.sin(i) * 1e3));
    const f64 = new Float64Array(n).map((_, i) => Math.cos(i) / 7);
    f32[10] = Number.NaN;
    f64[20] = -0;
    const outputs: Tensor[] = [
      { name: 'a', datatype: 'FP32', shape: [n], data: f32 },
      { name: 'b', datatype: 'FP64', shape: [50, 100], data: f64 },
      { name: 'c', datatype: 'FP32', shape: [n], data: f32.map((v) => (Number.isNaN(v) ? 1 : v)) },
    ];
    const encoded = encodeInferResponse({ model_name: 'm', outputs }, undefined);
    assertSameTensors(
      decodeInferResponse(encoded.body, { contentType: 'application/json' }).outputs,
      outputs,
    );
  });
});

describe('binary tensor extension', () => {
  function binaryBody(header: object, ...parts: Buffer[]) {
    const json = Buffer.from(JSON.stringify(header));
    return { body: Buffer.concat([json, ...parts]), headers: { inferenceHeaderLength: String(json.length) } };
  }

  it('views aligned regions and copies misaligned ones', () => {
    const values = new Float32Array([1.5, -2, 3.25]);
    const raw = Buffer.from(values.buffer);
    for (const pad of [0, 1, 2, 3, 5]) {
      const header = {
        inputs: [{ name: 'x', datatype: 'FP32', shape: [3], parameters: { binary_data_size: 12 } }],
      };
      const json = JSON.stringify(header) + ' '.repeat(pad);
      // Place the body at an 8-aligned offset inside a larger buffer so alignment depends on the header only.
      const arena = Buffer.alloc(json.length + 12 + 8);
      const start = (8 - (arena.byteOffset % 8)) % 8;
      const body = arena.subarray(start, start + json.length + 12);
      body.write(json);
      raw.copy(body, json.length);
      const decoded = decodeInferRequest(
        body,
        { contentType: 'application/octet-stream', inferenceHeaderLength: String(json.length) },
        LIMITS,
      );
      const data = decoded.inputs[0]!.data as Float32Array;
      assert.deepEqual(Array.from(data), [1.5, -2, 3.25], `pad ${pad}`);
      const aligned = (body.byteOffset + json.length) % 4 === 0;
      assert.equal(data.buffer === body.buffer, aligned, `pad ${pad}: view iff aligned`);
    }
  });

  it('mixes binary and JSON inputs and accepts a missing content-type', () => {
    const { body, headers } = binaryBody(
      {
        inputs: [
          { name: 'a', datatype: 'INT32', shape: [2], parameters: { binary_data_size: 8, note: 'kept' } },
          { name: 'b', datatype: 'BOOL', shape: [2], data: [true, false] },
          { name: 'c', datatype: 'BYTES', shape: [2], parameters: { binary_data_size: 13 } },
        ],
      },
      Buffer.from(new Int32Array([7, -7]).buffer),
      Buffer.from([2, 0, 0, 0, 0x68, 0x69, 3, 0, 0, 0, 0xe2, 0x82, 0xac]),
    );
    const decoded = decodeInferRequest(body, headers, LIMITS);
    assert.deepEqual(Array.from(decoded.inputs[0]!.data as Int32Array), [7, -7]);
    assert.deepEqual(decoded.inputs[0]!.parameters, { note: 'kept' });
    assert.deepEqual(Array.from(decoded.inputs[1]!.data as Uint8Array), [1, 0]);
    assert.deepEqual(plain(decoded.inputs[2]!.data), plain(bytes('hi', '€')));
  });

  it('answers in binary when asked per output or per request, and in JSON otherwise', () => {
    const outputs: Tensor[] = [sampleTensor('FP32'), sampleTensor('BYTES'), sampleTensor('INT64')];
    const perOutput: InferRequest = {
      inputs: [],
      outputs: [
        { name: 't_fp32', parameters: { binary_data: true } },
        { name: 't_bytes' },
        { name: 't_int64', parameters: { binary_data: true } },
      ],
    };
    const encoded = encodeInferResponse({ model_name: 'm', outputs }, perOutput);
    assert.equal(encoded.headers['content-type'], 'application/octet-stream');
    const headerLength = Number(encoded.headers[BINARY_HEADER]);
    assert.equal(headerLength % 8, 0);
    const header = JSON.parse(encoded.body.subarray(0, headerLength).toString());
    assert.deepEqual(header.outputs[0].parameters, { binary_data_size: 24 });
    assert.equal(header.outputs[0].data, undefined);
    assert.ok(Array.isArray(header.outputs[1].data));
    assert.deepEqual(header.outputs[2].parameters, { binary_data_size: 48 });
    assert.equal(encoded.body.length, headerLength + 24 + 48);
    const back = decodeInferResponse(encoded.body, {
      contentType: encoded.headers['content-type'],
      inferenceHeaderLength: encoded.headers[BINARY_HEADER],
    });
    assertSameTensors(back.outputs, outputs);

    // Request-level flag, overridden per output.
    const requestLevel: InferRequest = {
      inputs: [],
      parameters: { binary_data_output: true },
      outputs: [{ name: 't_bytes', parameters: { binary_data: false } }],
    };
    const encoded2 = encodeInferResponse({ model_name: 'm', outputs }, requestLevel);
    const header2 = JSON.parse(encoded2.body.subarray(0, Number(encoded2.headers[BINARY_HEADER])).toString());
    assert.deepEqual(
      header2.outputs.map((o: { data?: unknown }) => o.data === undefined),
      [true, false, true],
    );
    assert.equal(
      encodeInferResponse({ model_name: 'm', outputs }, { inputs: [] }).headers['content-type'],
      'application/json',
    );
  });

  it('asks for binary outputs from the client side', () => {
    const encoded = encodeInferRequest(
      { inputs: [], outputs: [{ name: 'y' }] },
      { binary: false, binaryOutputs: true },
    );
    const doc = JSON.parse(encoded.body.toString());
    assert.deepEqual(doc.parameters, { binary_data_output: true });
    assert.deepEqual(doc.outputs, [{ name: 'y', parameters: { binary_data: true } }]);
  });
});

describe('request errors', () => {
  const x = (fields: object) => ({
    inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 3], data: [1, 2, 3, 4, 5, 6], ...fields }],
  });

  it('names the input when the element count does not match the shape', () => {
    expectError(
      () => decodeJson(x({ data: [1, 2, 3, 4, 5] })),
      'FERRY_INVALID_INPUT',
      /input "x": shape \[2,3\] needs 6 elements, got 5/,
    );
    expectError(
      () =>
        decodeJson(
          x({
            data: [
              [1, 2, 3],
              [4, 5, 6, 7],
            ],
          }),
        ),
      'FERRY_INVALID_INPUT',
      /input "x": .*got 7/,
    );
  });

  it('rejects malformed bodies and fields, naming the field', () => {
    const cases: [unknown, string, RegExp][] = [
      [{}, 'FERRY_BAD_REQUEST', /"inputs" is missing/],
      [{ inputs: {} }, 'FERRY_BAD_REQUEST', /"inputs" must be an array/],
      [[1, 2], 'FERRY_BAD_REQUEST', /must be a JSON object/],
      [{ id: 5, inputs: [] }, 'FERRY_BAD_REQUEST', /"id" must be a string/],
      [{ parameters: [], inputs: [] }, 'FERRY_BAD_REQUEST', /"parameters" must be an object/],
      [{ parameters: { a: { b: 1 } }, inputs: [] }, 'FERRY_BAD_REQUEST', /"parameters"\.a is an object/],
      [{ inputs: [5] }, 'FERRY_BAD_REQUEST', /inputs\[0\] must be an object/],
      [{ inputs: [{ datatype: 'FP32', shape: [1], data: [1] }] }, 'FERRY_INVALID_INPUT', /inputs\[0\]\.name/],
      [
        x({ datatype: 'FLOAT32' }),
        'FERRY_INVALID_INPUT',
        /input "x": inputs\[0\]\.datatype is "FLOAT32"; allowed: BOOL, .*FP32/,
      ],
      [
        x({ shape: 'abc' }),
        'FERRY_INVALID_INPUT',
        /input "x": inputs\[0\]\.shape must be an array of integers >= 0/,
      ],
      [x({ shape: [2, -3] }), 'FERRY_INVALID_INPUT', /input "x": inputs\[0\]\.shape\[1\] is -3/],
      [x({ shape: [2, 1.5] }), 'FERRY_INVALID_INPUT', /inputs\[0\]\.shape\[1\] is 1\.5/],
      [x({ data: undefined }), 'FERRY_INVALID_INPUT', /input "x": inputs\[0\]\.data is missing/],
      [x({ data: 'abc' }), 'FERRY_INVALID_INPUT', /input "x": inputs\[0\]\.data must be an array/],
      [
        x({ data: [1, 2, 3, 4, 5, 'x'] }),
        'FERRY_INVALID_INPUT',
        /input "x": element 5 of data is "x"; FP32 takes numbers or the strings "NaN"/,
      ],
      [
        x({ parameters: { binary_data_size: 24 } }),
        'FERRY_BAD_REQUEST',
        /input "x": .*binary_data_size is set but .* no Inference-Header-Content-Length/,
      ],
      [x({ parameters: 'p' }), 'FERRY_BAD_REQUEST', /inputs\[0\]\.parameters must be an object/],
      [
        { inputs: [x({}).inputs[0], x({}).inputs[0]] },
        'FERRY_INVALID_INPUT',
        /input "x": inputs\[1\] repeats the name/,
      ],
      [
        { ...x({}), outputs: [{ name: 'y' }, { name: 'y' }] },
        'FERRY_INVALID_INPUT',
        /outputs\[1\]: output "y" is requested twice/,
      ],
      [
        { ...x({}), outputs: [{ nom: 'y' }] },
        'FERRY_BAD_REQUEST',
        /outputs\[0\] must be an object with a non-empty string "name"/,
      ],
      [{ ...x({}), outputs: 'y' }, 'FERRY_BAD_REQUEST', /"outputs" must be an array/],
    ];
    for (const [body, code, pattern] of cases) expectError(() => decodeJson(body), code, pattern);
  });

  it('checks integer ranges and types per datatype', () => {
    const one = (datatype: string, value: unknown) => ({
      inputs: [{ name: 'v', datatype, shape: [1], data: [value] }],
    });
    const bad: [string, unknown, RegExp][] = [
      ['INT8', 128, /input "v": element 0 of data is 128; INT8 takes integers from -128 to 127/],
      ['UINT8', -1, /UINT8 takes integers from 0 to 255/],
      ['INT32', 1.5, /INT32 takes integers/],
      ['UINT32', 2 ** 32, /UINT32 takes integers from 0 to 4294967295/],
      ['INT16', '5', /INT16 takes integers/],
      ['INT64', 1.5, /INT64 takes integers from -9223372036854775808 to 9223372036854775807/],
      ['INT64', '9223372036854775808', /INT64 takes integers/],
      ['INT64', '12a', /INT64 takes integers/],
      ['UINT64', -1, /UINT64 takes integers from 0 to 18446744073709551615/],
      ['BOOL', 'true', /BOOL takes true or false/],
      ['BOOL', 2, /BOOL takes true or false/],
      ['BYTES', 5, /BYTES takes strings/],
      ['FP16', null, /FP16 takes numbers/],
      ['FP64', { v: 1 }, /input "v": element 0 of data is an object; FP64 takes numbers/],
    ];
    for (const [datatype, value, pattern] of bad)
      expectError(() => decodeJson(one(datatype, value)), 'FERRY_INVALID_INPUT', pattern);
    const huge = Buffer.from(
      '{"inputs":[{"name":"v","datatype":"UINT64","shape":[1],"data":[18446744073709551616]}]}',
    );
    expectError(() => decodeInferRequest(huge, {}, LIMITS), 'FERRY_INVALID_INPUT', /UINT64 takes integers/);
    // Accepted forms.
    assert.deepEqual(Array.from(decodeJson(one('BOOL', 1)).inputs[0]!.data as Uint8Array), [1]);
    assert.deepEqual(Array.from(decodeJson(one('INT64', '-42')).inputs[0]!.data as BigInt64Array), [-42n]);
    assert.deepEqual(Array.from(decodeJson(one('FP32', '-Infinity')).inputs[0]!.data as Float32Array), [
      -Infinity,
    ]);
    assert.deepEqual(Array.from(decodeJson(one('FP16', 1.0)).inputs[0]!.data as Uint16Array), [0x3c00]);
  });

  it('rejects over-limit bodies and declared sizes before allocating', () => {
    expectError(
      () => decodeJson(x({}), { maxBodyBytes: 10 }),
      'FERRY_PAYLOAD_TOO_LARGE',
      /request body is \d+ bytes, over the limit of 10/,
    );
    expectError(
      () => decodeJson(x({ shape: [1e9, 1e9] })),
      'FERRY_PAYLOAD_TOO_LARGE',
      /input "x": inputs\[0\]\.shape \[1000000000,1000000000\] has more than/,
    );
    expectError(
      () => decodeJson(x({ shape: [1e6, 1000] })),
      'FERRY_PAYLOAD_TOO_LARGE',
      /input "x": shape \[1000000,1000\] of FP32 declares 4000000000 bytes, over the limit of 1048576/,
    );
    const two = {
      inputs: [x({ shape: [100000] }).inputs[0], { ...x({ shape: [200000] }).inputs[0], name: 'y' }],
    };
    expectError(() => decodeJson(two), 'FERRY_PAYLOAD_TOO_LARGE', /input "y": .*with the inputs before it/);
  });

  it('rejects unknown content types and accepts JSON variants', () => {
    const body = jsonBody(x({}));
    expectError(
      () => decodeInferRequest(body, { contentType: 'image/png' }, LIMITS),
      'FERRY_UNSUPPORTED_MEDIA_TYPE',
      /Content-Type "image\/png" is not supported/,
    );
    for (const contentType of [
      undefined,
      'application/json; charset=utf-8',
      'Application/JSON',
      'application/octet-stream',
      // curl -d's default; Triton and KServe read these bodies as JSON too.
      'application/x-www-form-urlencoded',
      'text/plain',
    ]) {
      assert.equal(decodeInferRequest(body, { contentType }, LIMITS).inputs.length, 1);
    }
  });

  it('rejects deeply nested data without overflowing the stack', () => {
    const depth = 100_000;
    const text = `{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":${'['.repeat(depth)}1${']'.repeat(depth)}}]}`;
    expectError(
      () => decodeInferRequest(Buffer.from(text), {}, LIMITS),
      'FERRY_INVALID_INPUT',
      /input "x": inputs\[0\]\.data is nested more than 64 deep/,
    );
  });

  it('rejects malformed JSON and empty bodies', () => {
    expectError(
      () => decodeInferRequest(Buffer.from('{"inputs": ['), JSON_HEADERS, LIMITS),
      'FERRY_BAD_REQUEST',
      /request body is not valid JSON/,
    );
    expectError(
      () => decodeInferRequest(Buffer.from('{"inputs":[{"data":[NaN]}]}'), JSON_HEADERS, LIMITS),
      'FERRY_BAD_REQUEST',
      /not valid JSON/,
    );
    expectError(
      () => decodeInferRequest(Buffer.alloc(0), {}, LIMITS),
      'FERRY_BAD_REQUEST',
      /request body is empty/,
    );
  });

  describe('binary errors', () => {
    const header = (size: number, datatype = 'FP32', shape = [2]) => ({
      inputs: [{ name: 'x', datatype, shape, parameters: { binary_data_size: size } }],
    });
    const send = (doc: object, tail: Buffer, headerLength?: string) => {
      const json = Buffer.from(JSON.stringify(doc));
      return decodeInferRequest(
        Buffer.concat([json, tail]),
        {
          contentType: 'application/octet-stream',
          inferenceHeaderLength: headerLength ?? String(json.length),
        },
        LIMITS,
      );
    };

    it('checks binary_data_size against the shape', () => {
      expectError(
        () => send(header(4), Buffer.alloc(4)),
        'FERRY_INVALID_INPUT',
        /input "x": parameters\.binary_data_size is 4 but shape \[2\] of FP32 needs 8 bytes/,
      );
      expectError(
        () => send(header(-1), Buffer.alloc(8)),
        'FERRY_BAD_REQUEST',
        /input "x": inputs\[0\]\.parameters\.binary_data_size must be a byte count/,
      );
      expectError(
        () => send(header(2.5), Buffer.alloc(8)),
        'FERRY_BAD_REQUEST',
        /binary_data_size must be a byte count/,
      );
    });

    it('rejects truncated data, trailing bytes and bogus header lengths', () => {
      expectError(
        () => send(header(8), Buffer.alloc(5)),
        'FERRY_BAD_REQUEST',
        /input "x": parameters\.binary_data_size is 8 but only 5 bytes of the body remain/,
      );
      expectError(
        () => send(header(8), Buffer.alloc(12)),
        'FERRY_BAD_REQUEST',
        /4 bytes after the last binary tensor/,
      );
      for (const bogus of ['abc', '-1', '1e3', '99999', '1.5']) {
        expectError(
          () => send(header(8), Buffer.alloc(8), bogus),
          'FERRY_BAD_REQUEST',
          /Inference-Header-Content-Length is .* must be an integer from 0 to the body length/,
        );
      }
      expectError(
        () => send(header(8), Buffer.alloc(8), '10'),
        'FERRY_BAD_REQUEST',
        /JSON header is not valid JSON/,
      );
    });

    it('rejects both data and binary_data_size, bad BOOL bytes and broken BYTES', () => {
      const both = {
        inputs: [
          { name: 'x', datatype: 'FP32', shape: [2], data: [1, 2], parameters: { binary_data_size: 8 } },
        ],
      };
      expectError(
        () => send(both, Buffer.alloc(8)),
        'FERRY_BAD_REQUEST',
        /input "x": inputs\[0\] has both "data" and parameters\.binary_data_size/,
      );
      expectError(
        () => send(header(2, 'BOOL'), Buffer.from([1, 7])),
        'FERRY_INVALID_INPUT',
        /input "x": BOOL element 1 is byte 7/,
      );
      expectError(
        () => send(header(5, 'BYTES'), Buffer.from([9, 0, 0, 0, 1])),
        'FERRY_INVALID_INPUT',
        /input "x": shape \[2\] needs 2 BYTES elements \(at least 8 bytes\)/,
      );
      expectError(
        () => send(header(9, 'BYTES'), Buffer.from([9, 0, 0, 0, 1, 0, 0, 0, 0])),
        'FERRY_INVALID_INPUT',
        /input "x": BYTES element 0 runs past/,
      );
      expectError(
        () => send(header(10, 'BYTES'), Buffer.from([1, 0, 0, 0, 65, 0, 0, 0, 0, 66])),
        'FERRY_INVALID_INPUT',
        /input "x": the 2 BYTES elements use 9 bytes but parameters\.binary_data_size is 10/,
      );
    });
  });
});

describe('response encoding guards', () => {
  it('refuses inconsistent output tensors as an internal error', () => {
    const broken: Tensor = { name: 'y', datatype: 'FP32', shape: [3], data: new Float32Array(2) };
    assert.throws(() => encodeInferResponse({ model_name: 'm', outputs: [broken] }, undefined), {
      code: 'FERRY_INTERNAL',
      message: /output "y": shape \[3\] needs 3 elements but its data has 2/,
    });
    const wrongType: Tensor = { name: 'y', datatype: 'FP32', shape: [2], data: new Float64Array(2) };
    assert.throws(
      () =>
        encodeInferResponse(
          { model_name: 'm', outputs: [wrongType] },
          { inputs: [], parameters: { binary_data_output: true } },
        ),
      {
        code: 'FERRY_INTERNAL',
        message: /output "y": FP32 data must be Float32Array/,
      },
    );
  });

  it('reports a malformed server response as FERRY_INTERNAL', () => {
    assert.throws(() => decodeInferResponse(Buffer.from('{"outputs":[]}'), {}), {
      code: 'FERRY_INTERNAL',
      message: /invalid inference response: "model_name" must be a string/,
    });
  });
});
