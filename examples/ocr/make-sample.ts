/**
 * Regenerates the OCR example's files from nothing but code and the detection model:
 *   sample.png, sample.jpg      the sample image (embedded bitmap font, black on white)
 *   requests/sample.json        OIP JSON request carrying sample.png as base64 text in a BYTES element
 *   responses/sample.json       the response the handler gives for it (boxes, scores)
 * and prints the detected boxes next to the drawn text rectangles so they can be checked by eye.
 *
 *   node --import tsx examples/ocr/make-sample.ts
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { InferResponse, Tensor } from '../../src/protocol/types.ts';
import { encodeJpeg, encodePng, renderSample, SAMPLE_TEXT, textRect } from './sample-image.ts';

const here = dirname(fileURLToPath(import.meta.url));

/** JSON with two-space indents, but arrays of plain values on one line (readable tensors). */
export function prettyJson(value: unknown, indent = ''): string {
  if (Array.isArray(value)) {
    if (value.every((v) => v === null || typeof v !== 'object'))
      return JSON.stringify(value).replace(/,/g, ', ');
    const inner = `${indent}  `;
    return `[\n${value.map((v) => inner + prettyJson(v, inner)).join(',\n')}\n${indent}]`;
  }
  if (value !== null && typeof value === 'object') {
    const inner = `${indent}  `;
    const entries = Object.entries(value).map(
      ([k, v]) => `${inner}${JSON.stringify(k)}: ${prettyJson(v, inner)}`,
    );
    return `{\n${entries.join(',\n')}\n${indent}}`;
  }
  return JSON.stringify(value);
}

/** OIP JSON: numeric data flat, row-major. */
function tensorJson(t: Tensor): Record<string, unknown> {
  return {
    name: t.name,
    datatype: t.datatype,
    shape: t.shape,
    data: Array.from(t.data as Int32Array | Float32Array),
  };
}

async function main(): Promise<void> {
  const image = renderSample();
  const png = encodePng(image);
  const jpg = encodeJpeg(image);
  writeFileSync(join(here, 'sample.png'), png);
  writeFileSync(join(here, 'sample.jpg'), jpg);

  const request = {
    inputs: [{ name: 'image', datatype: 'BYTES', shape: [1], data: [png.toString('base64')] }],
  };
  mkdirSync(join(here, 'requests'), { recursive: true });
  writeFileSync(join(here, 'requests', 'sample.json'), `${prettyJson(request)}\n`);

  // Run the handler exactly as the server would: load -> preprocess -> predict -> postprocess.
  const handler = (await import('./handler.ts')).default;
  const { localContext } = await import('./local-context.ts');
  const ctx = localContext(here);
  const state = await handler.load(ctx);
  const inferRequest = {
    inputs: [{ name: 'image', datatype: 'BYTES' as const, shape: [1], data: [new Uint8Array(png)] }],
  };
  const pre = handler.preprocess({ image: inferRequest.inputs[0]! }, state);
  const outputs = handler.postprocess(await handler.predict(pre, state));
  await ctx.close();

  const response: Omit<InferResponse, 'outputs'> & { outputs: unknown[] } = {
    model_name: 'ocr',
    model_version: '1',
    outputs: [tensorJson(outputs.boxes!), tensorJson(outputs.scores!)],
  };
  mkdirSync(join(here, 'responses'), { recursive: true });
  writeFileSync(join(here, 'responses', 'sample.json'), `${prettyJson(response)}\n`);

  console.log(
    `sample.png ${png.length} bytes, sample.jpg ${jpg.length} bytes, ${image.width}x${image.height}`,
  );
  console.log('drawn text (x1,y1,x2,y2):');
  for (const item of SAMPLE_TEXT) {
    const r = textRect(item);
    console.log(`  ${JSON.stringify(item.text).padEnd(22)} ${r.x1},${r.y1},${r.x2},${r.y2}`);
  }
  console.log('detected boxes (x1,y1,x2,y2 score):');
  const boxes = outputs.boxes!.data as Int32Array;
  const scores = outputs.scores!.data as Float32Array;
  for (let i = 0; i < scores.length; i++) {
    console.log(`  ${Array.from(boxes.subarray(i * 4, i * 4 + 4)).join(',')}  ${scores[i]!.toFixed(3)}`);
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) await main();
