import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isFerryError } from '../core/errors.ts';
import { checkInferMediaType, type InferRoute, mediaTypeOf } from './media-type.ts';

/** The table in media-type.ts, row by row: [Content-Type, route, accepted?, hint pattern when refused]. */
const TABLE: [string | undefined, InferRoute, boolean, RegExp?][] = [
  ['application/json', 'v2', true],
  ['application/json', 'v1', true],
  ['Application/JSON; charset=utf-8', 'v2', true],
  ['application/vnd.ferry+json', 'v1', true],
  [undefined, 'v2', true],
  [undefined, 'v1', true],
  ['', 'v2', true],
  ['application/octet-stream', 'v2', true],
  ['application/octet-stream', 'v1', false, /POST \/v2\/models\/\{name\}\/infer/],
  ['application/x-www-form-urlencoded', 'v2', false, /curl -d .*-H 'content-type: application\/json'/],
  ['application/x-www-form-urlencoded', 'v1', false, /curl -d .*-H 'content-type: application\/json'/],
  ['text/plain', 'v2', false, /-H 'content-type: application\/json'/],
  ['text/plain;charset=UTF-8', 'v1', false, /-H 'content-type: application\/json'/],
  ['multipart/form-data; boundary=x', 'v2', false, /application\/json/],
  ['image/png', 'v2', false, /application\/json/],
  ['json', 'v2', false, /application\/json/],
];

describe('checkInferMediaType', () => {
  for (const [type, route, accepted, hint] of TABLE) {
    it(`${route} ${JSON.stringify(type)}: ${accepted ? 'read' : '415'}`, () => {
      if (accepted) {
        checkInferMediaType(type, route);
        return;
      }
      assert.throws(
        () => checkInferMediaType(type, route),
        (error: unknown) => {
          assert.ok(isFerryError(error));
          assert.equal(error.code, 'FERRY_UNSUPPORTED_MEDIA_TYPE');
          assert.equal(error.status, 415);
          assert.ok(error.message.includes(JSON.stringify(type)), error.message);
          assert.match(error.hint ?? '', hint!);
          return true;
        },
      );
    });
  }

  it('mediaTypeOf drops parameters and case', () => {
    assert.equal(mediaTypeOf(' Text/Plain ; charset=utf-8'), 'text/plain');
    assert.equal(mediaTypeOf(undefined), '');
  });
});
