import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { PNG } from 'pngjs';
import { HandlerError } from './errors.ts';

const isHandlerError = (e: unknown): e is HandlerError => e instanceof HandlerError;

import type { InferRequest, Tensor } from '../../src/protocol/types.ts';
import handler, { type OcrState } from './handler.ts';
import { type LocalContext, localContext } from './local-context.ts';

import {
  type Box,
  boxScore,
  connectedComponents,
  decodeImage,
  detectBoxes,
  imageBytes,
  normalize,
  PPOCR_MEAN,
  PPOCR_STD,
  parseMaxSide,
  type RgbImage,
  resizeBilinear,
  scaleBox,
  sortReadingOrder,
  targetSize,
  threshold,
  unclip,
} from './pipeline.ts';
import { encodeJpeg, encodePng, renderSample, SAMPLE_TEXT, textRect } from './sample-image.ts';

const here = dirname(fileURLToPath(import.meta.url));

function rejectsAsInvalidInput(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(isHandlerError(error), `expected a HandlerError, got ${String(error)}`);
    assert.equal(error.code, 'FERRY_INVALID_INPUT');
    assert.match(error.message, /^input "image": /);
    assert.match(error.message, pattern);
    return true;
  });
}

function grey(width: number, height: number, values: number[]): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (const [i, v] of values.entries()) {
    data.fill(v, i * 3, i * 3 + 3);
  }
  return { width, height, data };
}

describe('targetSize', () => {
  test('both sides are multiples of 32, the long side is at most maxSide, and nothing is upscaled', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4096 }),
        fc.integer({ min: 1, max: 4096 }),
        fc.integer({ min: 32, max: 4096 }),
        (w, h, maxSide) => {
          const size = targetSize(w, h, maxSide);
          assert.equal(size.width % 32, 0);
          assert.equal(size.height % 32, 0);
          assert.ok(size.width >= 32 && size.height >= 32);
          assert.ok(Math.max(size.width, size.height) <= maxSide);
          // Never larger than the image, apart from rounding up to the nearest multiple of 32.
          assert.ok(size.width <= Math.max(32, Math.round(w / 32) * 32));
          assert.ok(size.height <= Math.max(32, Math.round(h / 32) * 32));
        },
      ),
    );
  });

  test('PP-OCR sizes for known images', () => {
    assert.deepEqual(targetSize(620, 300, 960), { width: 608, height: 288 });
    assert.deepEqual(targetSize(1920, 1080, 960), { width: 960, height: 544 });
    assert.deepEqual(targetSize(1080, 1920, 960), { width: 544, height: 960 });
    assert.deepEqual(targetSize(10, 10, 960), { width: 32, height: 32 });
  });
});

test('parseMaxSide: default 960, integers 32..4096, anything else is a load error naming the variable', () => {
  assert.equal(parseMaxSide(undefined), 960);
  assert.equal(parseMaxSide(''), 960);
  assert.equal(parseMaxSide('640'), 640);
  for (const bad of ['abc', '31', '4097', '960.5', '-1']) {
    assert.throws(
      () => parseMaxSide(bad),
      (e: unknown) =>
        isHandlerError(e) && e.code === 'FERRY_MODEL_LOAD_FAILED' && e.message.includes('OCR_MAX_SIDE'),
    );
  }
});

describe('resizeBilinear', () => {
  test('interpolates between pixel centres and clamps at the edges', () => {
    const out = resizeBilinear(grey(2, 1, [0, 100]), 4, 1);
    assert.deepEqual(
      [...out.data].filter((_, i) => i % 3 === 0),
      [0, 25, 75, 100],
    );
    const down = resizeBilinear(grey(4, 1, [0, 100, 200, 40]), 2, 1);
    assert.deepEqual(
      [...down.data].filter((_, i) => i % 3 === 0),
      [50, 120],
    );
  });

  test('keeps a constant image constant and returns the image itself when the size is unchanged', () => {
    const flat = grey(7, 5, new Array(35).fill(77));
    const out = resizeBilinear(flat, 32, 32);
    assert.equal(out.data.length, 32 * 32 * 3);
    assert.ok(out.data.every((v) => v === 77));
    assert.equal(resizeBilinear(flat, 7, 5), flat);
  });
});

test('normalize: PP-OCR mean/std on [0, 1], planar NCHW in B, G, R order', () => {
  // Two pixels: pure red, then white.
  const image: RgbImage = { width: 2, height: 1, data: new Uint8Array([255, 0, 0, 255, 255, 255]) };
  const out = normalize(image);
  assert.equal(out.length, 6);
  const expect = (plane: number, value: number) => (value - PPOCR_MEAN[plane]!) / PPOCR_STD[plane]!;
  const want = [expect(0, 0), expect(0, 1), expect(1, 0), expect(1, 1), expect(2, 1), expect(2, 1)];
  for (const [i, v] of out.entries()) {
    assert.ok(Math.abs(v - want[i]!) < 1e-5, `element ${i}: ${v} vs ${want[i]}`);
  }
});

describe('DB post-processing', () => {
  test('threshold is strict', () => {
    assert.deepEqual([...threshold(new Float32Array([0.1, 0.5, 0.51, 0.9]), 0.5)], [0, 0, 1, 1]);
  });

  test('connectedComponents finds 8-connected regions with their bounds and sizes', () => {
    // biome-ignore format: a 6x5 map, one row per line
    const map = [
      1, 1, 0, 0, 0, 0,
      0, 1, 0, 0, 1, 1,
      0, 0, 1, 0, 1, 1,
      0, 0, 0, 0, 0, 0,
      1, 0, 0, 0, 0, 1,
    ];
    const components = connectedComponents(Uint8Array.from(map), 6, 5);
    assert.deepEqual(components, [
      { minX: 0, minY: 0, maxX: 2, maxY: 2, pixels: 4 }, // diagonal (1,1)-(2,2) joins
      { minX: 4, minY: 1, maxX: 5, maxY: 2, pixels: 4 },
      { minX: 0, minY: 4, maxX: 0, maxY: 4, pixels: 1 },
      { minX: 5, minY: 4, maxX: 5, maxY: 4, pixels: 1 },
    ]);
  });

  test('connectedComponents handles a map-sized region without recursion', () => {
    const width = 960;
    const height = 960;
    const [only] = connectedComponents(new Uint8Array(width * height).fill(1), width, height);
    assert.deepEqual(only, { minX: 0, minY: 0, maxX: width - 1, maxY: height - 1, pixels: width * height });
  });

  test('boxScore, unclip and scaleBox', () => {
    const prob = Float32Array.from([0.2, 0.4, 0.6, 0.8]);
    assert.ok(Math.abs(boxScore(prob, 2, { x1: 0, y1: 0, x2: 2, y2: 2 }) - 0.5) < 1e-6);
    assert.ok(Math.abs(boxScore(prob, 2, { x1: 1, y1: 0, x2: 2, y2: 2 }) - 0.6) < 1e-6);
    // 10x2 box: area 20, perimeter 24, d = 20 * 1.5 / 24 = 1.25 on every side.
    assert.deepEqual(unclip({ x1: 10, y1: 20, x2: 20, y2: 22 }, 1.5), {
      x1: 8.75,
      y1: 18.75,
      x2: 21.25,
      y2: 23.25,
    });
    const from = { width: 608, height: 288 };
    const to = { width: 620, height: 300 };
    assert.deepEqual(scaleBox({ x1: 304, y1: 144, x2: 608, y2: 288 }, from, to), {
      x1: 310,
      y1: 150,
      x2: 620,
      y2: 300,
    });
    assert.deepEqual(scaleBox({ x1: -3, y1: -0.2, x2: 700, y2: 290 }, from, to), {
      x1: 0,
      y1: 0,
      x2: 620,
      y2: 300,
    });
  });

  test('sortReadingOrder: top to bottom, and left to right within a line', () => {
    const box = (x1: number, y1: number): Box => ({ x1, y1, x2: x1 + 5, y2: y1 + 5 });
    const sorted = sortReadingOrder([box(50, 100), box(300, 12), box(10, 18), box(200, 100), box(0, 60)]);
    assert.deepEqual(
      sorted.map((b) => [b.x1, b.y1]),
      [
        [10, 18],
        [300, 12],
        [0, 60],
        [50, 100],
        [200, 100],
      ],
    );
  });

  test('detectBoxes keeps a confident region, drops tiny and low-score ones, and maps to the original size', () => {
    const map = { width: 64, height: 32 };
    const prob = new Float32Array(64 * 32);
    const paint = (x1: number, y1: number, x2: number, y2: number, p: number) => {
      for (let y = y1; y < y2; y++) prob.fill(p, y * 64 + x1, y * 64 + x2);
    };
    paint(10, 10, 30, 14, 0.9); // text kernel, 20x4
    paint(40, 20, 42, 22, 0.95); // 2x2: tiny
    paint(40, 4, 60, 10, 0.45); // above the pixel threshold, below the box threshold
    const detections = detectBoxes(prob, map, { width: 128, height: 64 });
    assert.equal(detections.length, 1);
    const [d] = detections;
    // unclip: d = 80 * 1.5 / 48 = 2.5 -> [7.5, 32.5) x [7.5, 16.5), then x2 to 128x64.
    assert.deepEqual({ ...d, score: 0 }, { x1: 15, y1: 15, x2: 65, y2: 33, score: 0 });
    assert.ok(Math.abs(d!.score - 0.9) < 1e-6);
    assert.deepEqual(detectBoxes(new Float32Array(64 * 32), map, map), []);
  });
});

describe('decoding', () => {
  const image = renderSample();
  const png = new Uint8Array(encodePng(image));

  test('imageBytes passes file bytes through and decodes base64 text and data URLs', () => {
    assert.equal(imageBytes(png), png);
    const b64 = Buffer.from(png).toString('base64');
    assert.deepEqual(imageBytes(new TextEncoder().encode(b64)), png);
    assert.deepEqual(imageBytes(new TextEncoder().encode(`data:image/png;base64,${b64}`)), png);
    assert.deepEqual(imageBytes(new TextEncoder().encode(b64.replace(/(.{76})/g, '$1\n'))), png);
  });

  test('imageBytes rejects empty elements, non-image bytes and base64 of non-images', () => {
    rejectsAsInvalidInput(() => imageBytes(new Uint8Array(0)), /empty/);
    rejectsAsInvalidInput(() => imageBytes(new TextEncoder().encode('hello, world')), /not a PNG or JPEG/);
    rejectsAsInvalidInput(
      () => imageBytes(new TextEncoder().encode(btoa('GIF89a....'))),
      /not a PNG or JPEG/,
    );
  });

  test('decodeImage reads PNG exactly and JPEG closely', () => {
    assert.deepEqual(decodeImage(png), image);
    const fromJpeg = decodeImage(new Uint8Array(encodeJpeg(image, 90)));
    assert.equal(fromJpeg.width, image.width);
    assert.equal(fromJpeg.height, image.height);
    let error = 0;
    for (let i = 0; i < image.data.length; i++) error += Math.abs(fromJpeg.data[i]! - image.data[i]!);
    assert.ok(error / image.data.length < 8, `mean JPEG error ${error / image.data.length}`);
  });

  test('decodeImage composites transparency over white', () => {
    const rgba = new PNG({ width: 2, height: 1 });
    rgba.data = Buffer.from([0, 0, 0, 0, 0, 0, 0, 255]);
    const decoded = decodeImage(new Uint8Array(PNG.sync.write(rgba)));
    assert.deepEqual([...decoded.data], [255, 255, 255, 0, 0, 0]);
  });

  test('decodeImage rejects images over 4096 px a side before decoding them, and broken files', () => {
    const wide = new PNG({ width: 4097, height: 1 });
    wide.data = Buffer.alloc(4097 * 4, 255);
    rejectsAsInvalidInput(
      () => decodeImage(new Uint8Array(PNG.sync.write(wide))),
      /4097x1 pixels; at most 4096/,
    );
    const jpg = new Uint8Array(encodeJpeg(grey(8, 8, new Array(64).fill(0))));
    // Patch the JPEG's frame header to claim 5000x8.
    const sof = jpg.findIndex((b, i) => b === 0xff && jpg[i + 1] === 0xc0);
    new DataView(jpg.buffer).setUint16(sof + 7, 5000);
    rejectsAsInvalidInput(() => decodeImage(jpg), /5000x8 pixels/);
    rejectsAsInvalidInput(() => decodeImage(png.subarray(0, 200)), /not a valid PNG/);
    rejectsAsInvalidInput(
      () => decodeImage(Uint8Array.from([0xff, 0xd8, 0xff, 0xe0, 0, 16, 1, 2])),
      /not a valid JPEG/,
    );
  });
});

// ---------------------------------------------------------------------------------------------
// The real model through the handler contract.

describe('handler with the PP-OCRv4 detector', () => {
  let ctx: LocalContext;
  let state: OcrState;
  before(async () => {
    ctx = localContext(here);
    state = await handler.load(ctx);
  });
  after(async () => {
    await ctx.close();
  });

  function imageRequest(element: Uint8Array): InferRequest {
    return { inputs: [{ name: 'image', datatype: 'BYTES', shape: [1], data: [element] }] };
  }

  async function run(request: InferRequest, s: OcrState = state): Promise<{ boxes: Tensor; scores: Tensor }> {
    const named = Object.fromEntries(request.inputs.map((t) => [t.name, t]));
    const pre = handler.preprocess(named, s);
    const out = handler.postprocess(await handler.predict(pre, s));
    return { boxes: out.boxes!, scores: out.scores! };
  }

  function boxList(t: Tensor): Box[] {
    const d = t.data as Int32Array;
    return Array.from({ length: t.shape[0]! }, (_, i) => ({
      x1: d[i * 4]!,
      y1: d[i * 4 + 1]!,
      x2: d[i * 4 + 2]!,
      y2: d[i * 4 + 3]!,
    }));
  }

  const overlap = (a: Box, b: Box) =>
    Math.max(0, Math.min(a.x2, b.x2) - Math.max(a.x1, b.x1)) *
    Math.max(0, Math.min(a.y2, b.y2) - Math.max(a.y1, b.y1));

  /** Distance in pixels (Chebyshev) from (x, y) to the nearest box; 0 inside a box. */
  const distance = (x: number, y: number, boxes: Box[]) =>
    Math.min(...boxes.map((b) => Math.max(b.x1 - x, 0, x - (b.x2 - 1), b.y1 - y, y - (b.y2 - 1))));

  /**
   * Every drawn text line is covered: at least 95% of its inked pixels are inside a box and none is more
   * than 3 px outside one (the detector places all-caps lines ~3 px low: it learned lines with descenders),
   * every box lies mostly on text, and no piece of text is cut into more boxes than it has words + 1.
   */
  function assertCoversText(image: RgbImage, boxes: Box[]): void {
    assert.ok(boxes.length >= SAMPLE_TEXT.length, `only ${boxes.length} boxes`);
    for (const item of SAMPLE_TEXT) {
      const r = textRect(item);
      let ink = 0;
      let covered = 0;
      for (let y = r.y1; y < r.y2; y++) {
        for (let x = r.x1; x < r.x2; x++) {
          if (image.data[(y * image.width + x) * 3]! >= 128) continue;
          ink++;
          const d = distance(x, y, boxes);
          if (d === 0) covered++;
          assert.ok(
            d <= 3,
            `"${item.text}": text pixel (${x}, ${y}) is ${d} px from a box: ${JSON.stringify(boxes)}`,
          );
        }
      }
      assert.ok(ink > 0);
      assert.ok(
        covered >= 0.95 * ink,
        `"${item.text}": only ${covered} of ${ink} text pixels are inside a box`,
      );
    }
    const rects = SAMPLE_TEXT.map(textRect);
    for (const b of boxes) {
      const area = (b.x2 - b.x1) * (b.y2 - b.y1);
      const onText = rects.reduce((sum, r) => sum + overlap(b, r), 0);
      assert.ok(
        onText >= 0.6 * area,
        `box ${JSON.stringify(b)} is mostly outside the text (${onText}/${area})`,
      );
    }
    for (const [i, r] of rects.entries()) {
      const words = SAMPLE_TEXT[i]!.text.split(' ').length;
      const hits = boxes.filter((b) => overlap(b, r) > 0).length;
      assert.ok(hits >= 1 && hits <= words + 1, `"${SAMPLE_TEXT[i]!.text}" is hit by ${hits} boxes`);
    }
  }

  test('sample.png is the deterministic rendering, and the request carries it as base64', () => {
    const png = new Uint8Array(readFileSync(join(here, 'sample.png')));
    assert.deepEqual(decodeImage(png), renderSample());
    const request = JSON.parse(readFileSync(join(here, 'requests', 'sample.json'), 'utf8'));
    assert.deepEqual(imageBytes(new TextEncoder().encode(request.inputs[0].data[0])), png);
  });

  test('sample.png: boxes cover every line of text and match the committed response', async () => {
    const png = new Uint8Array(readFileSync(join(here, 'sample.png')));
    const { boxes, scores } = await run(imageRequest(png));
    assert.equal(boxes.datatype, 'INT32');
    assert.equal(scores.datatype, 'FP32');
    assert.deepEqual(boxes.shape, [scores.shape[0], 4]);
    assertCoversText(renderSample(), boxList(boxes));

    // The example check in ferry.yaml, done here: the JSON request (base64 text) gives the committed response.
    const request = JSON.parse(readFileSync(join(here, 'requests', 'sample.json'), 'utf8'));
    const fromJson = await run(imageRequest(new TextEncoder().encode(request.inputs[0].data[0])));
    const expected = JSON.parse(readFileSync(join(here, 'responses', 'sample.json'), 'utf8'));
    const [wantBoxes, wantScores] = expected.outputs;
    assert.deepEqual(fromJson.boxes.shape, wantBoxes.shape);
    assert.deepEqual([...(fromJson.boxes.data as Int32Array)], wantBoxes.data);
    assert.deepEqual([...(boxes.data as Int32Array)], wantBoxes.data);
    const got = [...(fromJson.scores.data as Float32Array)];
    assert.equal(got.length, wantScores.data.length);
    for (const [i, s] of got.entries()) {
      assert.ok(Math.abs(s - wantScores.data[i]) < 0.01, `score ${i}: ${s}`);
    }
    for (const s of got) assert.ok(s >= 0.6 && s <= 1, `score ${s} outside [0.6, 1]`);
  });

  test('sample.jpg: boxes cover every line of text', async () => {
    const jpg = new Uint8Array(readFileSync(join(here, 'sample.jpg')));
    const { boxes } = await run(imageRequest(jpg));
    assertCoversText(renderSample(), boxList(boxes));
  });

  test('a blank page has no boxes: shapes [0, 4] and [0]', async () => {
    const blank = grey(200, 100, new Array(200 * 100).fill(255));
    const { boxes, scores } = await run(imageRequest(new Uint8Array(encodePng(blank))));
    assert.deepEqual(boxes.shape, [0, 4]);
    assert.deepEqual(scores.shape, [0]);
  });

  test('OCR_MAX_SIDE limits the detector input; a bad value fails load', async () => {
    const small = await handler.load(localContext(here, { OCR_MAX_SIDE: '320' }));
    const png = new Uint8Array(readFileSync(join(here, 'sample.png')));
    const pre = handler.preprocess({ image: imageRequest(png).inputs[0]! }, small);
    assert.deepEqual(pre.input, { width: 320, height: 160 });
    assert.deepEqual(pre.original, { width: 620, height: 300 });
    const { boxes } = await run(imageRequest(png), small);
    for (const b of boxList(boxes)) assert.ok(b.x2 <= 620 && b.y2 <= 300);
    await assert.rejects(
      Promise.resolve().then(() => handler.load(localContext(here, { OCR_MAX_SIDE: 'big' }))),
      (e: unknown) => isHandlerError(e) && e.code === 'FERRY_MODEL_LOAD_FAILED',
    );
  });

  test('bad input is FERRY_INVALID_INPUT naming the input', () => {
    // Deterministic "random" bytes (a linear congruential generator).
    let seed = 42;
    const noise = Uint8Array.from({ length: 4096 }, () => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed >>> 24;
    });
    rejectsAsInvalidInput(
      () => handler.preprocess({ image: imageRequest(noise).inputs[0]! }, state),
      /not a PNG or JPEG/,
    );
    rejectsAsInvalidInput(
      () => handler.preprocess({ image: imageRequest(new Uint8Array(0)).inputs[0]! }, state),
      /empty/,
    );
    rejectsAsInvalidInput(
      () =>
        handler.preprocess(
          { image: { name: 'image', datatype: 'FP32', shape: [1], data: new Float32Array(1) } },
          state,
        ),
      /expected one BYTES element/,
    );
    assert.throws(
      () => handler.preprocess({}, state),
      (e: unknown) =>
        isHandlerError(e) && e.code === 'FERRY_INVALID_INPUT' && /"image" is missing/.test(e.message),
    );
  });
});
