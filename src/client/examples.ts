/** Replays a model's examples (ferry.yaml `examples`) against a server and compares the answers. */
import { isFerryError } from '../core/errors.ts';
import { compareResponse, type Mismatch } from '../protocol/compare.ts';
import type { OipClient } from './oip-client.ts';

export interface Example {
  name: string;
  request: unknown;
  response?: unknown;
  tolerance: number;
}

export interface ExampleResult {
  name: string;
  passed: boolean;
  /** Milliseconds for the request. */
  ms: number;
  /** Why it failed: mismatches, or the error the server answered. */
  mismatches: Mismatch[];
  error?: string;
}

export async function replayExamples(
  client: OipClient,
  model: string,
  version: string | undefined,
  examples: Example[],
): Promise<ExampleResult[]> {
  const results: ExampleResult[] = [];
  for (const example of examples) {
    const started = performance.now();
    try {
      const actual = await client.inferJson(model, example.request, version);
      const mismatches =
        example.response === undefined ? [] : compareResponse(example.response, actual, example.tolerance);
      results.push({
        name: example.name,
        passed: mismatches.length === 0,
        ms: performance.now() - started,
        mismatches,
      });
    } catch (error) {
      const message = isFerryError(error) ? `${error.code}: ${error.message}` : String(error);
      results.push({
        name: example.name,
        passed: false,
        ms: performance.now() - started,
        mismatches: [],
        error: message,
      });
    }
  }
  return results;
}
