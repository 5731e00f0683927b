/**
 * Which request bodies the inference routes take, by Content-Type (pure). docs/errors.md promises a 415
 * for anything that is neither JSON nor the binary tensor format; this is where that promise is kept.
 *
 * | Content-Type                                   | OIP v2 infer      | KServe v1 predict |
 * | ---------------------------------------------- | ----------------- | ----------------- |
 * | application/json, application/*+json (+params) | JSON              | JSON              |
 * | none (no header, or an empty one)              | JSON              | JSON              |
 * | application/octet-stream                       | binary extension  | 415 (JSON only)   |
 * | application/x-www-form-urlencoded (curl -d)    | 415, hint: add -H | 415, hint: add -H |
 * | anything else (text/plain, multipart, ...)     | 415               | 415               |
 *
 * A missing type makes no claim, so the body is read as JSON (as Triton and KServe do). A declared type that
 * is not JSON is a claim the body is something else: text/plain and curl -d's form encoding are refused
 * rather than guessed at, with a hint that names the header to add.
 */
import { FerryError } from '../core/errors.ts';

export type InferRoute = 'v2' | 'v1';

const JSON_TYPE = 'application/json';
const OCTET_STREAM = 'application/octet-stream';
const FORM = 'application/x-www-form-urlencoded';
const ADD_HEADER =
  "Send JSON with Content-Type: application/json (with curl: -H 'content-type: application/json').";

/** The media type without parameters, lower-cased: "Application/JSON; charset=utf-8" -> "application/json". */
export function mediaTypeOf(contentType: string | undefined): string {
  if (contentType === undefined) return '';
  const semicolon = contentType.indexOf(';');
  return (semicolon < 0 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase();
}

function isJson(type: string): boolean {
  return type === JSON_TYPE || (type.startsWith('application/') && type.endsWith('+json'));
}

/** Throws FERRY_UNSUPPORTED_MEDIA_TYPE (415) unless `route` takes a body of this Content-Type. */
export function checkInferMediaType(contentType: string | undefined, route: InferRoute): void {
  const type = mediaTypeOf(contentType);
  if (type === '' || isJson(type)) return;
  if (type === OCTET_STREAM && route === 'v2') return;
  const shown = JSON.stringify(contentType);
  if (type === FORM) {
    throw new FerryError(
      'FERRY_UNSUPPORTED_MEDIA_TYPE',
      `Content-Type ${shown} is not supported: the body must be JSON (application/json)`,
      { hint: "curl -d sends this type unless told otherwise: add -H 'content-type: application/json'." },
    );
  }
  if (route === 'v1') {
    throw new FerryError(
      'FERRY_UNSUPPORTED_MEDIA_TYPE',
      `Content-Type ${shown} is not supported: KServe v1 predict takes JSON (application/json) only`,
      {
        hint:
          type === OCTET_STREAM
            ? 'Binary tensors go to the OIP v2 route, POST /v2/models/{name}/infer.'
            : ADD_HEADER,
      },
    );
  }
  throw new FerryError(
    'FERRY_UNSUPPORTED_MEDIA_TYPE',
    `Content-Type ${shown} is not supported: use application/json, or application/octet-stream with the Inference-Header-Content-Length header for binary tensors`,
    { hint: ADD_HEADER },
  );
}
