/**
 * The SSRF guard's decisions (issue 10, OWASP API7:2023): may the platform make a request to this address or
 * registry because an API caller named it? Pure: no DNS here; the caller checks every address a name
 * resolves to, at connect time, so a name that re-resolves to a forbidden address is caught too.
 *
 * Addresses:
 *
 * | address                                                        | allowed |
 * |----------------------------------------------------------------|---------|
 * | link-local 169.254.0.0/16, fe80::/10 (cloud metadata lives here) | never   |
 * | 100.100.100.200 (Alibaba's metadata), fd00:ec2::254 (AWS IPv6)   | never   |
 * | unspecified 0.0.0.0/8, ::, multicast, broadcast                 | never   |
 * | IPv4-mapped IPv6 (::ffff:a.b.c.d)                               | as a.b.c.d |
 * | anything else (loopback and private ranges included: a local registry is the common case) | yes |
 *
 * Registries: a reference's registry must be in the configured allow-list (exact host[:port], or a
 * "*.domain" suffix); an empty list allows every registry that passes the address check.
 */
import { isIP } from 'node:net';

export type AddressVerdict = { allowed: true } | { allowed: false; reason: string };

const METADATA = new Set(['100.100.100.200', 'fd00:ec2::254']);

function ipv4Octets(address: string): number[] | null {
  const parts = address.split('.');
  if (parts.length !== 4) return null;
  const octets = parts.map(Number);
  return octets.every((o) => Number.isInteger(o) && o >= 0 && o <= 255) ? octets : null;
}

/** The eight 16-bit groups of an IPv6 address (a trailing dotted IPv4 part counts as two). */
function ipv6Groups(ip: string): number[] {
  let text = ip;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = ipv4Octets(dotted[1]!)!;
    text = `${text.slice(0, -dotted[1]!.length)}${((a! << 8) | b!).toString(16)}:${((c! << 8) | d!).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const middle = tail === undefined ? [] : new Array(8 - left.length - right.length).fill('0');
  return [...left, ...middle, ...right].map((g) => Number.parseInt(g, 16));
}

/** The IPv4 address an IPv4-mapped IPv6 address (::ffff:a.b.c.d, in any spelling) stands for. */
function mappedIpv4(ip: string): string | null {
  const g = ipv6Groups(ip);
  if (g.length !== 8 || g.slice(0, 5).some((x) => x !== 0) || g[5] !== 0xffff) return null;
  return [g[6]! >> 8, g[6]! & 0xff, g[7]! >> 8, g[7]! & 0xff].join('.');
}

/** Whether the platform may connect to this literal IP address on a caller's behalf. */
export function checkAddress(address: string): AddressVerdict {
  let ip = address.trim().toLowerCase();
  if (ip.startsWith('[') && ip.endsWith(']')) ip = ip.slice(1, -1);
  if (isIP(ip) === 6) ip = mappedIpv4(ip) ?? ip;
  const kind = isIP(ip);
  if (kind === 0) return { allowed: false, reason: `${JSON.stringify(address)} is not an IP address` };
  if (METADATA.has(ip)) return { allowed: false, reason: `${ip} is a cloud metadata address` };
  if (kind === 4) {
    const [a, b] = ipv4Octets(ip)!;
    if (a === 169 && b === 254)
      return { allowed: false, reason: `${ip} is link-local (cloud metadata lives there)` };
    if (a === 0) return { allowed: false, reason: `${ip} is an unspecified address` };
    if (a! >= 224) return { allowed: false, reason: `${ip} is multicast, reserved or broadcast` };
    return { allowed: true };
  }
  if (ip === '::') return { allowed: false, reason: ':: is the unspecified address' };
  const first = ipv6Groups(ip)[0]!;
  if ((first & 0xffc0) === 0xfe80) return { allowed: false, reason: `${ip} is link-local` };
  if ((first & 0xff00) === 0xff00) return { allowed: false, reason: `${ip} is multicast` };
  return { allowed: true };
}

/** Whether a registry ("host[:port]") is in the allow-list; an empty list allows all. */
export function registryAllowed(registry: string, allowList: readonly string[]): boolean {
  if (allowList.length === 0) return true;
  const wanted = registry.toLowerCase();
  const host = wanted.replace(/:\d+$/, '');
  return allowList.some((entry) => {
    const rule = entry.toLowerCase();
    if (rule.startsWith('*.')) return host.endsWith(rule.slice(1)) && host.length > rule.length - 1;
    return rule === wanted || (!rule.includes(':') && rule === host);
  });
}
