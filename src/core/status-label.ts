/**
 * The value of a `status` / `code` metric label for an HTTP status (docs/metrics.md, Cardinality): the code itself
 * when it is one Node knows (`http.STATUS_CODES`: the registered ones, 63) or 499 (the gateway's "client went
 * away", nginx's convention), else its class (`2xx` ... `5xx`), and `other` outside 100-599. A replica, a stand-in or a proxy in between may answer any three digits; the label set
 * stays bounded whatever they send. Made once per status and kept (a table lookup on the request path).
 */
import { STATUS_CODES } from 'node:http';

const labels: string[] = [];
/** Not registered, but Ferry's own: the gateway counts a request whose client went away first as 499. */
const CLIENT_CLOSED = 499;

const known = (status: number) => STATUS_CODES[status] !== undefined || status === CLIENT_CLOSED;

export function statusLabel(status: number): string {
  let label = labels[status];
  if (label !== undefined) return label;
  if (!Number.isInteger(status) || status < 0 || status > 999) return 'other';
  label = known(status)
    ? String(status)
    : status >= 100 && status < 600
      ? `${Math.floor(status / 100)}xx`
      : 'other';
  labels[status] = label;
  return label;
}

/** Every value statusLabel can return. */
export function statusLabels(): string[] {
  return [
    ...Object.keys(STATUS_CODES).filter((c) => Number(c) >= 100 && Number(c) < 600),
    String(CLIENT_CLOSED),
    '1xx',
    '2xx',
    '3xx',
    '4xx',
    '5xx',
    'other',
  ];
}
