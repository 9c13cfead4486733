import { isIP, isIPv4, isIPv6 } from 'node:net';

/**
 * What an IP address is, for deciding whether the gateway may connect to it on a client's behalf.
 *
 * - `public`: globally routable unicast
 * - `private`: RFC 1918 (10/8, 172.16/12, 192.168/16), shared address space 100.64/10 (carrier NAT),
 *   unique local fc00::/7, deprecated site-local fec0::/10, local-use NAT64 64:ff9b:1::/48
 * - `loopback`: 127/8, ::1
 * - `link-local`: 169.254/16 (cloud metadata endpoints live here), fe80::/10
 * - `reserved`: documentation, benchmarking, IETF protocol and future-use blocks, Teredo, the
 *   deprecated IPv4-compatible ::/96 — nothing a real audio host uses
 * - `unspecified`: 0.0.0.0/8, :: — on Linux a connection to 0.0.0.0 reaches the local host
 * - `multicast`, `broadcast`: never a TCP peer
 */
export type AddressKind = 'public' | 'private' | 'loopback' | 'link-local' | 'reserved' | 'unspecified' | 'multicast' | 'broadcast';

/** An address's kind and the block (CIDR) that decided it. */
export interface AddressClass {
  kind: AddressKind;
  /** e.g. `10.0.0.0/8`; for an IPv4 address inside IPv6 (mapped, NAT64, 6to4) `::ffff:0:0/96 > 127.0.0.0/8`. */
  range: string;
}

/** Kinds refused even when private addresses are allowed: no server listens there. */
export const NEVER_ALLOWED: ReadonlySet<AddressKind> = new Set(['unspecified', 'multicast', 'broadcast']);

interface Block {
  cidr: string;
  bytes: number[];
  prefix: number;
  kind: AddressKind | 'embedded-v4';
  /** Byte offset of the embedded IPv4 address (for `embedded-v4`). */
  v4At?: number;
}

/** Address as bytes (4 or 16), or null when it is not an IP address. Accepts a `%zone` suffix on IPv6. */
export function addressBytes(address: string): number[] | null {
  const plain = address.replace(/^\[|\]$/g, '').split('%')[0]!;
  if (isIPv4(plain)) return plain.split('.').map(Number);
  if (!isIPv6(plain)) return null;
  let text = plain;
  let v4: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.slice(lastColon + 1).includes('.')) {
    v4 = text.slice(lastColon + 1).split('.').map(Number);
    text = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const groups = (s: string | undefined) => (s ? s.split(':').filter((g) => g !== '') : []);
  const h = groups(head);
  const t = groups(tail);
  const all = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const bytes = all.flatMap((g) => {
    const n = parseInt(g, 16);
    return [n >> 8, n & 0xff];
  });
  if (v4.length === 4) bytes.splice(12, 4, ...v4);
  return bytes;
}

const block = (cidr: string, kind: Block['kind'], v4At?: number): Block => {
  const [ip, prefix] = cidr.split('/');
  return { cidr, bytes: addressBytes(ip!)!, prefix: Number(prefix), kind, v4At };
};

// First match wins: more specific blocks come before the blocks that contain them.
const V4_BLOCKS: Block[] = [
  block('0.0.0.0/8', 'unspecified'),
  block('10.0.0.0/8', 'private'),
  block('100.64.0.0/10', 'private'),
  block('127.0.0.0/8', 'loopback'),
  block('169.254.0.0/16', 'link-local'),
  block('172.16.0.0/12', 'private'),
  block('192.0.0.0/24', 'reserved'),
  block('192.0.2.0/24', 'reserved'),
  block('192.88.99.0/24', 'reserved'),
  block('192.168.0.0/16', 'private'),
  block('198.18.0.0/15', 'reserved'),
  block('198.51.100.0/24', 'reserved'),
  block('203.0.113.0/24', 'reserved'),
  block('224.0.0.0/4', 'multicast'),
  block('255.255.255.255/32', 'broadcast'),
  block('240.0.0.0/4', 'reserved'),
];

const V6_BLOCKS: Block[] = [
  block('::/128', 'unspecified'),
  block('::1/128', 'loopback'),
  block('::ffff:0:0/96', 'embedded-v4', 12),
  block('::/96', 'reserved'),
  block('64:ff9b::/96', 'embedded-v4', 12),
  block('64:ff9b:1::/48', 'private'),
  block('100::/64', 'reserved'),
  block('2001::/32', 'reserved'),
  block('2001:db8::/32', 'reserved'),
  block('2002::/16', 'embedded-v4', 2),
  block('fc00::/7', 'private'),
  block('fe80::/10', 'link-local'),
  block('fec0::/10', 'private'),
  block('ff00::/8', 'multicast'),
];

function inBlock(bytes: number[], b: Block): boolean {
  if (bytes.length !== b.bytes.length) return false;
  for (let bit = 0; bit < b.prefix; bit += 8) {
    const take = Math.min(8, b.prefix - bit);
    const mask = (0xff << (8 - take)) & 0xff;
    if ((bytes[bit / 8]! & mask) !== (b.bytes[bit / 8]! & mask)) return false;
  }
  return true;
}

/**
 * Classifies an IPv4 or IPv6 address (`[v6]` brackets and `%zone` accepted). An IPv4 address
 * carried inside IPv6 — IPv4-mapped `::ffff:a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16` —
 * gets the kind of the IPv4 address, since that is where a connection ends up.
 *
 * @throws TypeError when `address` is not an IP address
 */
export function classifyAddress(address: string): AddressClass {
  const bytes = addressBytes(address);
  if (!bytes) throw new TypeError(`not an IP address: ${JSON.stringify(address)}`);
  const match = (bytes.length === 4 ? V4_BLOCKS : V6_BLOCKS).find((b) => inBlock(bytes, b));
  if (!match) return { kind: 'public', range: bytes.length === 4 ? '0.0.0.0/0' : '::/0' };
  if (match.kind !== 'embedded-v4') return { kind: match.kind, range: match.cidr };
  const inner = classifyAddress(bytes.slice(match.v4At!, match.v4At! + 4).join('.'));
  return { kind: inner.kind, range: `${match.cidr} > ${inner.range}` };
}

/** Whether a connection to an address of this class is allowed (`allowPrivate`: ALLOW_PRIVATE_URLS). */
export function addressAllowed(cls: AddressClass, allowPrivate: boolean): boolean {
  if (cls.kind === 'public') return true;
  return allowPrivate && !NEVER_ALLOWED.has(cls.kind);
}

/** True for an IP literal (what `URL.hostname` gives for `http://1.2.3.4/` or `http://[::1]/`). */
export const isIpLiteral = (host: string): boolean => isIP(host.replace(/^\[|\]$/g, '')) !== 0;
