/**
 * The OCR text-detection pipeline as small pure functions: image bytes -> RGB pixels -> resized ->
 * normalised NCHW tensor data (pre-processing), and probability map -> bitmap -> connected components
 * -> scored, expanded, rescaled, sorted boxes (DB post-processing, with axis-aligned boxes).
 * handler.ts only wires these to the ONNX session; ocr.test.ts tests each of them.
 */
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { HandlerError } from './errors.ts';

/** Name of the handler's only input, used in every error message. */
export const INPUT_NAME = 'image';
/** Largest accepted image side, in pixels (before any resizing). */
export const MAX_IMAGE_SIDE = 4096;
/** Default limit on the long side of the image fed to the detector (PP-OCR's det_limit_side_len). */
export const DEFAULT_MAX_SIDE = 960;

export interface Size {
  width: number;
  height: number;
}

/** 8-bit RGB pixels, row-major, 3 bytes a pixel. */
export interface RgbImage extends Size {
  data: Uint8Array;
}

/** An axis-aligned box in continuous pixel coordinates: [x1, x2) x [y1, y2). */
export interface Box {
  x1: number;
  y1: number;
  x2: number;
  y2: number;
}

/** A box with its DB box score (mean probability inside the box on the probability map). */
export interface Detection extends Box {
  score: number;
}

/** One 8-connected region of a bitmap: its bounding pixels (inclusive) and pixel count. */
export interface Component {
  minX: number;
  minY: number;
  maxX: number;
  maxY: number;
  pixels: number;
}

export interface DbOptions {
  /** Probability above which a pixel counts as text (DB's thresh). */
  threshold: number;
  /** Minimum mean probability inside a candidate box (DB's box_thresh). */
  boxThreshold: number;
  /** DB's unclip_ratio: how far the shrunk text kernel is expanded back. */
  unclipRatio: number;
  /** Boxes with a shorter side (in map pixels) are dropped (DB's min_size). */
  minSize: number;
}

export const DEFAULT_DB_OPTIONS: Readonly<DbOptions> = Object.freeze({
  threshold: 0.3,
  boxThreshold: 0.6,
  unclipRatio: 1.5,
  minSize: 3,
});

function invalid(problem: string, hint?: string): HandlerError {
  return new HandlerError('FERRY_INVALID_INPUT', `input "${INPUT_NAME}": ${problem}`, {
    hint: hint ?? 'Send one BYTES element holding the PNG or JPEG file bytes, or their base64 text.',
  });
}

// ---------------------------------------------------------------------------------------------
// Decoding

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

export function detectImageFormat(bytes: Uint8Array): 'png' | 'jpeg' | null {
  if (bytes.length >= 8 && PNG_MAGIC.every((b, i) => bytes[i] === b)) return 'png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  return null;
}

const BASE64 = /^[A-Za-z0-9+/\-_]*={0,2}$/;

/**
 * The image file bytes carried by one BYTES element: the element itself when it starts with a PNG or
 * JPEG signature, otherwise the element read as base64 text (optionally a `data:image/...;base64,` URL).
 * OIP JSON carries BYTES as UTF-8 strings, which cannot hold binary files; base64 text can.
 */
export function imageBytes(element: Uint8Array): Uint8Array {
  if (element.length === 0) throw invalid('the element is empty');
  if (detectImageFormat(element) !== null) return element;
  let text = Buffer.from(element.buffer, element.byteOffset, element.byteLength).toString('latin1');
  const comma = text.startsWith('data:') ? text.indexOf(',') : -1;
  if (comma >= 0) text = text.slice(comma + 1);
  text = text.replace(/\s+/g, '');
  if (text.length === 0 || !BASE64.test(text) || text.length % 4 === 1) {
    throw invalid(`not a PNG or JPEG file and not base64 text (${element.length} bytes)`);
  }
  const decoded = new Uint8Array(Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64'));
  if (detectImageFormat(decoded) === null) {
    throw invalid(`the base64 text decodes to ${decoded.length} bytes that are not a PNG or JPEG file`);
  }
  return decoded;
}

/** Reads the pixel size from the file header without decoding; null when no header is found. */
export function readImageSize(bytes: Uint8Array, format: 'png' | 'jpeg'): Size | null {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (format === 'png') {
    // Signature (8), IHDR chunk length (4) and type (4), then width and height (big endian).
    if (bytes.length < 24 || String.fromCharCode(...bytes.subarray(12, 16)) !== 'IHDR') return null;
    return { width: view.getUint32(16), height: view.getUint32(20) };
  }
  // JPEG: walk the marker segments up to a start-of-frame (SOF0..SOF15 except DHT, JPG, DAC).
  let at = 2;
  while (at + 4 <= bytes.length) {
    if (bytes[at] !== 0xff) return null;
    const marker = bytes[at + 1]!;
    if (marker === 0xff) {
      at += 1; // fill byte
      continue;
    }
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      at += 2; // markers without a length
      continue;
    }
    const length = view.getUint16(at + 2);
    const isSof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isSof) {
      if (at + 9 > bytes.length) return null;
      return { height: view.getUint16(at + 5), width: view.getUint16(at + 7) };
    }
    if (marker === 0xd9 || marker === 0xda) return null; // end of image or scan before any frame header
    at += 2 + length;
  }
  return null;
}

/** Composites RGBA over white into RGB (documents with transparency are text on white paper). */
function rgbaToRgb(rgba: Uint8Array, width: number, height: number): RgbImage {
  const n = width * height;
  const data = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    const a = rgba[i * 4 + 3]!;
    const s = i * 4;
    const d = i * 3;
    if (a === 255) {
      data[d] = rgba[s]!;
      data[d + 1] = rgba[s + 1]!;
      data[d + 2] = rgba[s + 2]!;
    } else {
      const white = 255 - a;
      data[d] = Math.round((rgba[s]! * a + 255 * white) / 255);
      data[d + 1] = Math.round((rgba[s + 1]! * a + 255 * white) / 255);
      data[d + 2] = Math.round((rgba[s + 2]! * a + 255 * white) / 255);
    }
  }
  return { width, height, data };
}

/** Decodes PNG or JPEG file bytes into RGB pixels; rejects anything else and images over 4096 px a side. */
export function decodeImage(bytes: Uint8Array): RgbImage {
  const format = detectImageFormat(bytes);
  if (format === null) throw invalid('not a PNG or JPEG file (no PNG or JPEG signature)');
  const size = readImageSize(bytes, format);
  if (size === null) throw invalid(`not a valid ${format.toUpperCase()} file: no image header found`);
  if (size.width < 1 || size.height < 1) {
    throw invalid(
      `the ${format.toUpperCase()} image is ${size.width}x${size.height} pixels; it has no pixels`,
    );
  }
  if (size.width > MAX_IMAGE_SIDE || size.height > MAX_IMAGE_SIDE) {
    throw invalid(
      `the image is ${size.width}x${size.height} pixels; at most ${MAX_IMAGE_SIDE} pixels a side are allowed`,
      `Downscale the image so that both sides are at most ${MAX_IMAGE_SIDE} pixels.`,
    );
  }
  let rgba: { width: number; height: number; data: Uint8Array };
  try {
    const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    rgba =
      format === 'png'
        ? PNG.sync.read(buffer)
        : jpeg.decode(buffer, {
            useTArray: true,
            formatAsRGBA: true,
            maxResolutionInMP: (MAX_IMAGE_SIDE * MAX_IMAGE_SIDE) / 1e6 + 1,
            maxMemoryUsageInMB: 512,
          });
  } catch (error) {
    throw invalid(`not a valid ${format.toUpperCase()} file: ${(error as Error).message}`);
  }
  if (
    rgba.width !== size.width ||
    rgba.height !== size.height ||
    rgba.data.length < rgba.width * rgba.height * 4
  ) {
    throw invalid(`not a valid ${format.toUpperCase()} file: the decoded pixels do not match the header`);
  }
  return rgbaToRgb(rgba.data, rgba.width, rgba.height);
}

// ---------------------------------------------------------------------------------------------
// Resizing and normalisation

/** Parses the OCR_MAX_SIDE setting: an integer from 32 to 4096; undefined or empty means 960. */
export function parseMaxSide(value: string | undefined): number {
  if (value === undefined || value.trim() === '') return DEFAULT_MAX_SIDE;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 32 || n > MAX_IMAGE_SIDE) {
    throw new HandlerError(
      'FERRY_MODEL_LOAD_FAILED',
      `env OCR_MAX_SIDE: "${value}" is not an integer from 32 to ${MAX_IMAGE_SIDE}`,
      {
        hint: 'Set OCR_MAX_SIDE to the longest image side fed to the detector, e.g. 960 (a multiple of 32 is best).',
      },
    );
  }
  return n;
}

/**
 * The detector's input size (PP-OCR's DetResizeForTest, limit type "max"): scale down so the long side is
 * at most maxSide (never up), then round each side to a multiple of 32, at least 32 and at most maxSide.
 */
export function targetSize(width: number, height: number, maxSide: number): Size {
  const ratio = Math.max(width, height) > maxSide ? maxSide / Math.max(width, height) : 1;
  const limit = Math.max(1, Math.floor(maxSide / 32));
  const side = (n: number) => Math.min(Math.max(Math.round((n * ratio) / 32), 1), limit) * 32;
  return { width: side(width), height: side(height) };
}

/** Bilinear resize with pixel-centre alignment (like OpenCV's INTER_LINEAR), rounding to 8 bits. */
export function resizeBilinear(image: RgbImage, width: number, height: number): RgbImage {
  const { width: sw, height: sh, data: src } = image;
  if (sw === width && sh === height) return image;
  const x0s = new Int32Array(width);
  const x1s = new Int32Array(width);
  const fxs = new Float32Array(width);
  const scaleX = sw / width;
  for (let x = 0; x < width; x++) {
    const sx = Math.min(Math.max((x + 0.5) * scaleX - 0.5, 0), sw - 1);
    const x0 = Math.floor(sx);
    x0s[x] = x0 * 3;
    x1s[x] = Math.min(x0 + 1, sw - 1) * 3;
    fxs[x] = sx - x0;
  }
  const out = new Uint8Array(width * height * 3);
  const scaleY = sh / height;
  for (let y = 0; y < height; y++) {
    const sy = Math.min(Math.max((y + 0.5) * scaleY - 0.5, 0), sh - 1);
    const y0 = Math.floor(sy);
    const fy = sy - y0;
    const row0 = y0 * sw * 3;
    const row1 = Math.min(y0 + 1, sh - 1) * sw * 3;
    let d = y * width * 3;
    for (let x = 0; x < width; x++) {
      const fx = fxs[x]!;
      const a = row0 + x0s[x]!;
      const b = row0 + x1s[x]!;
      const c = row1 + x0s[x]!;
      const e = row1 + x1s[x]!;
      for (let ch = 0; ch < 3; ch++) {
        const top = src[a + ch]! + (src[b + ch]! - src[a + ch]!) * fx;
        const bottom = src[c + ch]! + (src[e + ch]! - src[c + ch]!) * fx;
        out[d++] = Math.round(top + (bottom - top) * fy);
      }
    }
  }
  return { width, height, data: out };
}

export const PPOCR_MEAN = [0.485, 0.456, 0.406] as const;
export const PPOCR_STD = [0.229, 0.224, 0.225] as const;

/**
 * PP-OCR's NormalizeImage + ToCHWImage: (pixel / 255 - mean) / std, planar [3, H, W].
 * Channel order is B, G, R: PaddleOCR's own inference reads images with OpenCV (BGR) and applies the
 * mean and std in the order listed, so that is what the exported models were trained and tested with.
 */
export function normalize(image: RgbImage): Float32Array {
  const n = image.width * image.height;
  const out = new Float32Array(3 * n);
  const src = image.data;
  for (let plane = 0; plane < 3; plane++) {
    const channel = 2 - plane; // plane 0 = B, 1 = G, 2 = R
    const scale = 1 / (255 * PPOCR_STD[plane]!);
    const shift = PPOCR_MEAN[plane]! / PPOCR_STD[plane]!;
    const base = plane * n;
    for (let i = 0; i < n; i++) out[base + i] = src[i * 3 + channel]! * scale - shift;
  }
  return out;
}

/** What the detector needs from a request, plus the sizes to map boxes back with. */
export interface Preprocessed {
  /** NCHW float data of shape [1, 3, input.height, input.width]. */
  data: Float32Array;
  input: Size;
  original: Size;
}

/** BYTES element (file bytes or base64) -> decoded -> resized -> normalised. */
export function preprocessImage(element: Uint8Array, maxSide: number): Preprocessed {
  const image = decodeImage(imageBytes(element));
  const input = targetSize(image.width, image.height, maxSide);
  const resized = resizeBilinear(image, input.width, input.height);
  return { data: normalize(resized), input, original: { width: image.width, height: image.height } };
}

// ---------------------------------------------------------------------------------------------
// DB post-processing

/** 1 where the probability is above the threshold, else 0. */
export function threshold(prob: Float32Array, thresh: number): Uint8Array {
  const out = new Uint8Array(prob.length);
  for (let i = 0; i < prob.length; i++) out[i] = prob[i]! > thresh ? 1 : 0;
  return out;
}

/** 8-connected components of a bitmap, in scan order of their first pixel. Iterative (explicit stack). */
export function connectedComponents(bitmap: Uint8Array, width: number, height: number): Component[] {
  if (bitmap.length !== width * height) {
    throw new RangeError(`bitmap has ${bitmap.length} pixels, expected ${width}x${height}`);
  }
  const seen = new Uint8Array(bitmap.length);
  const stack = new Int32Array(bitmap.length);
  const components: Component[] = [];
  for (let start = 0; start < bitmap.length; start++) {
    if (bitmap[start] === 0 || seen[start] === 1) continue;
    const c: Component = { minX: width, minY: height, maxX: -1, maxY: -1, pixels: 0 };
    let top = 0;
    stack[top++] = start;
    seen[start] = 1;
    while (top > 0) {
      const p = stack[--top]!;
      const x = p % width;
      const y = (p - x) / width;
      c.pixels++;
      if (x < c.minX) c.minX = x;
      if (x > c.maxX) c.maxX = x;
      if (y < c.minY) c.minY = y;
      if (y > c.maxY) c.maxY = y;
      for (let dy = -1; dy <= 1; dy++) {
        const ny = y + dy;
        if (ny < 0 || ny >= height) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const nx = x + dx;
          if (nx < 0 || nx >= width) continue;
          const q = ny * width + nx;
          if (bitmap[q] === 1 && seen[q] === 0) {
            seen[q] = 1;
            stack[top++] = q;
          }
        }
      }
    }
    components.push(c);
  }
  return components;
}

/** A component's pixel bounds as a box covering those pixels: [minX, maxX + 1) x [minY, maxY + 1). */
export function componentBox(c: Component): Box {
  return { x1: c.minX, y1: c.minY, x2: c.maxX + 1, y2: c.maxY + 1 };
}

/** DB's box score: mean probability over the map pixels inside the box. */
export function boxScore(prob: Float32Array, width: number, box: Box): number {
  let sum = 0;
  for (let y = box.y1; y < box.y2; y++) {
    const row = y * width;
    for (let x = box.x1; x < box.x2; x++) sum += prob[row + x]!;
  }
  const area = (box.x2 - box.x1) * (box.y2 - box.y1);
  return area > 0 ? sum / area : 0;
}

/**
 * DB's unclip for an axis-aligned box: the polygon offset distance is area * ratio / perimeter,
 * and offsetting a rectangle by d grows each side by d.
 */
export function unclip(box: Box, ratio: number): Box {
  const w = box.x2 - box.x1;
  const h = box.y2 - box.y1;
  const d = (w * h * ratio) / (2 * (w + h));
  return { x1: box.x1 - d, y1: box.y1 - d, x2: box.x2 + d, y2: box.y2 + d };
}

/** Maps a box from one image size to another, rounds to whole pixels and clamps to the target image. */
export function scaleBox(box: Box, from: Size, to: Size): Box {
  const sx = to.width / from.width;
  const sy = to.height / from.height;
  const clamp = (v: number, max: number) => Math.min(Math.max(Math.round(v), 0), max);
  return {
    x1: clamp(box.x1 * sx, to.width),
    y1: clamp(box.y1 * sy, to.height),
    x2: clamp(box.x2 * sx, to.width),
    y2: clamp(box.y2 * sy, to.height),
  };
}

/**
 * Reading order as PP-OCR's sorted_boxes: top-to-bottom by y1, then boxes whose tops are within
 * lineTolerance pixels of each other count as one line and go left-to-right. Returns a new array.
 */
export function sortReadingOrder<T extends Box>(boxes: readonly T[], lineTolerance = 10): T[] {
  const sorted = [...boxes].sort((a, b) => a.y1 - b.y1 || a.x1 - b.x1);
  for (let i = 0; i < sorted.length - 1; i++) {
    for (let j = i; j >= 0; j--) {
      const a = sorted[j]!;
      const b = sorted[j + 1]!;
      if (Math.abs(b.y1 - a.y1) < lineTolerance && b.x1 < a.x1) {
        sorted[j] = b;
        sorted[j + 1] = a;
      } else {
        break;
      }
    }
  }
  return sorted;
}

/** The whole DB post-processing: probability map (map size) -> boxes in original image pixels. */
export function detectBoxes(
  prob: Float32Array,
  map: Size,
  original: Size,
  options: DbOptions = DEFAULT_DB_OPTIONS,
): Detection[] {
  const bitmap = threshold(prob, options.threshold);
  const detections: Detection[] = [];
  for (const component of connectedComponents(bitmap, map.width, map.height)) {
    const box = componentBox(component);
    if (Math.min(box.x2 - box.x1, box.y2 - box.y1) < options.minSize) continue;
    const score = boxScore(prob, map.width, box);
    if (score < options.boxThreshold) continue;
    const expanded = unclip(box, options.unclipRatio);
    if (Math.min(expanded.x2 - expanded.x1, expanded.y2 - expanded.y1) < options.minSize + 2) continue;
    const scaled = scaleBox(expanded, map, original);
    if (scaled.x2 <= scaled.x1 || scaled.y2 <= scaled.y1) continue;
    detections.push({ ...scaled, score });
  }
  return sortReadingOrder(detections);
}
