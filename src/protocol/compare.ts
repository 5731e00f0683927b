/**
 * Compares an inference response with an expected one (the `examples` of a ferry.yaml), as JSON values:
 * outputs matched by name, datatype and shape equal, numbers within an absolute tolerance, everything
 * else equal. Pure; used by `ferry test`.
 */

export interface Mismatch {
  /** Where, e.g. `outputs["probabilities"].data[2]`. */
  path: string;
  expected: string;
  actual: string;
}

interface JsonTensor {
  name?: unknown;
  datatype?: unknown;
  shape?: unknown;
  data?: unknown;
}

const MAX_MISMATCHES = 20;

/** Returns the differences (empty when the response matches). Only outputs named in `expected` are checked. */
export function compareResponse(expected: unknown, actual: unknown, tolerance: number): Mismatch[] {
  const mismatches: Mismatch[] = [];
  const expectedOutputs = outputsOf(expected);
  const actualOutputs = new Map(outputsOf(actual).map((t) => [String(t.name), t]));
  for (const want of expectedOutputs) {
    const name = String(want.name);
    const got = actualOutputs.get(name);
    const at = `outputs[${JSON.stringify(name)}]`;
    if (got === undefined) {
      mismatches.push({ path: at, expected: 'present', actual: 'missing' });
      continue;
    }
    if (want.datatype !== undefined && want.datatype !== got.datatype) {
      mismatches.push({
        path: `${at}.datatype`,
        expected: String(want.datatype),
        actual: String(got.datatype),
      });
    }
    if (want.shape !== undefined && JSON.stringify(want.shape) !== JSON.stringify(got.shape)) {
      mismatches.push({
        path: `${at}.shape`,
        expected: JSON.stringify(want.shape),
        actual: JSON.stringify(got.shape),
      });
    }
    compareValues(flatten(want.data), flatten(got.data), tolerance, `${at}.data`, mismatches);
  }
  return mismatches.slice(0, MAX_MISMATCHES);
}

function outputsOf(response: unknown): JsonTensor[] {
  const outputs = (response as { outputs?: unknown } | null)?.outputs;
  return Array.isArray(outputs) ? (outputs as JsonTensor[]) : [];
}

function flatten(data: unknown): unknown[] {
  return Array.isArray(data) ? (data as unknown[]).flat(Number.POSITIVE_INFINITY) : [data];
}

function compareValues(
  expected: unknown[],
  actual: unknown[],
  tolerance: number,
  path: string,
  out: Mismatch[],
): void {
  if (expected.length !== actual.length) {
    out.push({ path: `${path}.length`, expected: String(expected.length), actual: String(actual.length) });
    return;
  }
  for (let i = 0; i < expected.length && out.length < MAX_MISMATCHES; i++) {
    const want = expected[i];
    const got = actual[i];
    const close =
      typeof want === 'number' && typeof got === 'number'
        ? Math.abs(want - got) <= tolerance || (Number.isNaN(want) && Number.isNaN(got))
        : JSON.stringify(want) === JSON.stringify(got);
    if (!close)
      out.push({ path: `${path}[${i}]`, expected: JSON.stringify(want), actual: JSON.stringify(got) });
  }
}
