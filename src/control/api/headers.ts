/** Headers every answer of the control-plane API carries (app.ts's onSend hook; streams write them themselves). */

/** On every answer: JSON is never sniffed, framed, cached or sent with a referrer. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
  'cross-origin-resource-policy': 'same-origin',
};
