/**
 * Request bodies for the Open Inference Protocol v2 (JSON and the binary tensor extension), and a
 * small response reader for correctness checks before a measurement. Deliberately independent of
 * src/protocol: the benchmark is a client and must not share the server's codec (a bug there would
 * otherwise cancel out).
 */

export interface Fp32Input {
  name: string;
  shape: number[];
  data: Float32Array;
}

export interface RequestBody {
  body: Buffer;
  headers: Record<string, string>;
}

/** OIP JSON request: {"inputs":[{"name","datatype":"FP32","shape","data":[...]}]}. */
export function jsonInferBody(inputs: Fp32Input[]): RequestBody {
  const body = Buffer.from(
    JSON.stringify({
      inputs: inputs.map((t) => ({
        name: t.name,
        datatype: 'FP32',
        shape: t.shape,
        data: Array.from(t.data),
      })),
    }),
  );
  return { body, headers: { 'content-type': 'application/json' } };
}

export interface BinaryOptions {
  /** Pad the JSON header with spaces to a multiple of 8 bytes so tensor bytes land aligned. Default true. */
  align?: boolean;
  /** Ask for binary outputs (`parameters.binary_data_output: true`). Default true. */
  binaryOutput?: boolean;
}

/**
 * Binary tensor extension request: JSON header (inputs with `parameters.binary_data_size`, no `data`)
 * followed by each input's raw little-endian bytes; `Inference-Header-Content-Length` = header length.
 */
export function binaryInferBody(inputs: Fp32Input[], opts: BinaryOptions = {}): RequestBody {
  const align = opts.align ?? true;
  const header: Record<string, unknown> = {
    inputs: inputs.map((t) => ({
      name: t.name,
      datatype: 'FP32',
      shape: t.shape,
      parameters: { binary_data_size: t.data.byteLength },
    })),
  };
  if (opts.binaryOutput ?? true) header.parameters = { binary_data_output: true };
  let json = JSON.stringify(header);
  if (align) json = json.padEnd(Math.ceil(json.length / 8) * 8, ' ');
  else if (json.length % 4 === 0) json += ' '; // make "unaligned" really unaligned
  const head = Buffer.from(json);
  const total = head.length + inputs.reduce((n, t) => n + t.data.byteLength, 0);
  const body = Buffer.allocUnsafe(total);
  head.copy(body, 0);
  let off = head.length;
  for (const t of inputs) {
    // x86/ARM are little-endian; the extension wants little-endian, so the raw view is the wire form.
    Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).copy(body, off);
    off += t.data.byteLength;
  }
  return {
    body,
    headers: {
      'content-type': 'application/octet-stream',
      'inference-header-content-length': String(head.length),
    },
  };
}

export interface DecodedOutput {
  name: string;
  datatype: string;
  shape: number[];
  data: number[];
}

/** Read an OIP response (JSON, or binary extension for FP32 outputs) into plain numbers. */
export function readInferResponse(body: Buffer, headers: Headers): DecodedOutput[] {
  const hl = headers.get('inference-header-content-length');
  const jsonLen = hl === null ? body.length : Number(hl);
  const head = JSON.parse(body.subarray(0, jsonLen).toString('utf8')) as {
    outputs?: {
      name: string;
      datatype: string;
      shape: number[];
      data?: number[];
      parameters?: { binary_data_size?: number };
    }[];
  };
  if (!Array.isArray(head.outputs)) throw new Error(`response has no outputs: ${JSON.stringify(head)}`);
  let off = jsonLen;
  return head.outputs.map((o) => {
    const size = o.parameters?.binary_data_size;
    if (size !== undefined) {
      if (o.datatype !== 'FP32') throw new Error(`bench reads binary FP32 outputs only, got ${o.datatype}`);
      const copy = new Float32Array(size / 4);
      Buffer.from(copy.buffer).set(body.subarray(off, off + size));
      off += size;
      return { name: o.name, datatype: o.datatype, shape: o.shape, data: Array.from(copy) };
    }
    return {
      name: o.name,
      datatype: o.datatype,
      shape: o.shape,
      data: (o.data ?? []).flat(Infinity) as number[],
    };
  });
}

/**
 * Send one request and check the named output against `expected` (absolute+relative tolerance).
 * Throws with the status and body excerpt when the server answers wrongly: a fast error is not a result.
 */
export async function checkInfer(
  url: string,
  req: RequestBody,
  output: string,
  expected: ArrayLike<number>,
  tolerance = 1e-3,
): Promise<void> {
  const res = await fetch(url, { method: 'POST', body: req.body, headers: req.headers });
  const buf = Buffer.from(await res.arrayBuffer());
  if (res.status !== 200) {
    throw new Error(`POST ${url} answered ${res.status}: ${buf.subarray(0, 300).toString('utf8')}`);
  }
  const outs = readInferResponse(buf, res.headers);
  const out = outs.find((o) => o.name === output);
  if (!out)
    throw new Error(`POST ${url}: no output named "${output}" (got ${outs.map((o) => o.name).join(', ')})`);
  if (out.data.length !== expected.length) {
    throw new Error(
      `POST ${url}: output "${output}" has ${out.data.length} elements, expected ${expected.length}`,
    );
  }
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i] as number;
    const a = out.data[i] as number;
    if (!(Math.abs(a - e) <= tolerance * (1 + Math.abs(e)))) {
      throw new Error(`POST ${url}: output "${output}"[${i}] = ${a}, expected ${e}`);
    }
  }
}

/** Deterministic pseudo-random FP32 data in [0, 1) (mulberry32), so every run sends the same bytes. */
export function seededData(length: number, seed = 7): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  return out;
}
