/**
 * The OCR example's sample image, drawn with an embedded 5x7 bitmap font (no fonts, no downloads), so
 * the rectangle of every piece of text is known exactly. Used by make-sample.ts and ocr.test.ts.
 */
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import type { Box, RgbImage } from './pipeline.ts';

const GLYPH_ROWS = 7;
const GLYPH_COLS = 5;
/** A glyph advance is its 5 columns plus 1 blank column. */
const ADVANCE = GLYPH_COLS + 1;

/* biome-ignore format: one glyph per line, 7 rows of 5 columns */
const FONT: Record<string, string> = {
  A: '.###. #...# #...# ##### #...# #...# #...#',
  B: '####. #...# #...# ####. #...# #...# ####.',
  C: '.###. #...# #.... #.... #.... #...# .###.',
  D: '####. #...# #...# #...# #...# #...# ####.',
  E: '##### #.... #.... ####. #.... #.... #####',
  F: '##### #.... #.... ####. #.... #.... #....',
  G: '.###. #...# #.... #.### #...# #...# .####',
  H: '#...# #...# #...# ##### #...# #...# #...#',
  I: '.###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.',
  J: '..### ...#. ...#. ...#. ...#. #..#. .##..',
  K: '#...# #..#. #.#.. ##... #.#.. #..#. #...#',
  L: '#.... #.... #.... #.... #.... #.... #####',
  M: '#...# ##.## #.#.# #.#.# #...# #...# #...#',
  N: '#...# #...# ##..# #.#.# #..## #...# #...#',
  O: '.###. #...# #...# #...# #...# #...# .###.',
  P: '####. #...# #...# ####. #.... #.... #....',
  Q: '.###. #...# #...# #...# #.#.# #..#. .##.#',
  R: '####. #...# #...# ####. #.#.. #..#. #...#',
  S: '.#### #.... #.... .###. ....# ....# ####.',
  T: '##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..',
  U: '#...# #...# #...# #...# #...# #...# .###.',
  V: '#...# #...# #...# #...# #...# .#.#. ..#..',
  W: '#...# #...# #...# #.#.# #.#.# #.#.# .#.#.',
  X: '#...# #...# .#.#. ..#.. .#.#. #...# #...#',
  Y: '#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..',
  Z: '##### ....# ...#. ..#.. .#... #.... #####',
  '0': '.###. #...# #..## #.#.# ##..# #...# .###.',
  '1': '..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.',
  '2': '.###. #...# ....# ...#. ..#.. .#... #####',
  '3': '##### ...#. ..#.. ...#. ....# #...# .###.',
  '4': '...#. ..##. .#.#. #..#. ##### ...#. ...#.',
  '5': '##### #.... ####. ....# ....# #...# .###.',
  '6': '..##. .#... #.... ####. #...# #...# .###.',
  '7': '##### ....# ...#. ..#.. .#... .#... .#...',
  '8': '.###. #...# #...# .###. #...# #...# .###.',
  '9': '.###. #...# #...# .#### ....# ...#. .##..',
  ' ': '..... ..... ..... ..... ..... ..... .....',
};

/** One run of text drawn at a position (top-left, pixels) with an integer scale. */
export interface TextItem {
  text: string;
  x: number;
  y: number;
  scale: number;
}

/** The rectangle a text item covers, [x1, x2) x [y1, y2): from its first to its last inked column. */
export function textRect(item: TextItem): Box {
  const width = (item.text.length * ADVANCE - 1) * item.scale;
  return { x1: item.x, y1: item.y, x2: item.x + width, y2: item.y + GLYPH_ROWS * item.scale };
}

/** Draws text into an RGB image in the given grey level. Throws on characters the font lacks. */
export function drawText(image: RgbImage, item: TextItem, ink = 0): void {
  const { width, height, data } = image;
  for (let c = 0; c < item.text.length; c++) {
    const ch = item.text[c]!;
    const glyph = FONT[ch];
    if (glyph === undefined) throw new RangeError(`the sample font has no glyph for ${JSON.stringify(ch)}`);
    const rows = glyph.split(' ');
    for (let gy = 0; gy < GLYPH_ROWS; gy++) {
      for (let gx = 0; gx < GLYPH_COLS; gx++) {
        if (rows[gy]![gx] !== '#') continue;
        const px = item.x + (c * ADVANCE + gx) * item.scale;
        const py = item.y + gy * item.scale;
        for (let y = py; y < Math.min(py + item.scale, height); y++) {
          const row = y * width * 3;
          data.fill(ink, row + px * 3, row + Math.min(px + item.scale, width) * 3);
        }
      }
    }
  }
}

/** Sample size: deliberately not multiples of 32, so the detector input is resized and boxes scaled back. */
export const SAMPLE_WIDTH = 620;
export const SAMPLE_HEIGHT = 300;

/** The text on the sample: three lines, the last one with two separate pieces (reading order left-right). */
export const SAMPLE_TEXT: readonly TextItem[] = Object.freeze([
  { text: 'FERRY SHIPS MODELS', x: 40, y: 36, scale: 5 },
  { text: 'HELLO OCR 2026', x: 56, y: 118, scale: 6 },
  { text: 'ONNX 789', x: 40, y: 222, scale: 4 },
  { text: 'QUICK BOX', x: 352, y: 222, scale: 4 },
]);

/** Black text on white, deterministic. */
export function renderSample(): RgbImage {
  const image: RgbImage = {
    width: SAMPLE_WIDTH,
    height: SAMPLE_HEIGHT,
    data: new Uint8Array(SAMPLE_WIDTH * SAMPLE_HEIGHT * 3).fill(255),
  };
  for (const item of SAMPLE_TEXT) drawText(image, item);
  return image;
}

/** RGB -> RGBA with opaque alpha, as the encoders want. */
function toRgba(image: RgbImage): Buffer {
  const rgba = Buffer.alloc(image.width * image.height * 4, 255);
  for (let i = 0; i < image.width * image.height; i++) rgba.set(image.data.subarray(i * 3, i * 3 + 3), i * 4);
  return rgba;
}

/** PNG, greyscale (the sample is black on white). */
export function encodePng(image: RgbImage): Buffer {
  const png = new PNG({ width: image.width, height: image.height });
  png.data = toRgba(image);
  return PNG.sync.write(png, { colorType: 0 }); // greyscale: the sample is black on white
}

/** JPEG at the given quality. */
export function encodeJpeg(image: RgbImage, quality = 75): Buffer {
  return jpeg.encode({ width: image.width, height: image.height, data: toRgba(image) }, quality).data;
}
