import ipaddr from 'ipaddr.js';

/**
 * What an IP address is, for deciding whether the gateway may connect to it on a client's behalf.
 * The ranges are ipaddr.js's (`range()`: IANA special-purpose registries); this file only decides
 * what each range means for the gateway.
 *
 * - `public`: globally routable unicast
 * - `private`: RFC 1918 (10/8, 172.16/12, 192.168/16), shared address space 100.64/10 (carrier-grade
 *   NAT), unique local fc00::/7, deprecated site-local fec0::/10, local-use NAT64 64:ff9b:1::/48
 * - `loopback`: 127/8, ::1
 * - `link-local`: 169.254/16 (cloud metadata endpoints live here), fe80::/10
 * - `reserved`: documentation, benchmarking, IETF protocol and future-use blocks, Teredo, AS112,
 *   AMT, the deprecated IPv4-compatible ::/96 — nothing a real audio host or webhook receiver uses
 * - `unspecified`: 0.0.0.0/8, :: — on Linux a connection to 0.0.0.0 reaches the local host
 * - `multicast`, `broadcast`: never a TCP peer
 */
export type AddressKind = 'public' | 'private' | 'loopback' | 'link-local' | 'reserved' | 'unspecified' | 'multicast' | 'broadcast';

/** An address's kind and the ipaddr.js range that decided it. */
export interface AddressClass {
  kind: AddressKind;
  /**
   * ipaddr.js's range name (`private`, `carrierGradeNat`, `linkLocal`, `unicast` for public…); for an
   * IPv4 address inside IPv6 (mapped, NAT64, 6to4) both, e.g. `ipv4Mapped > loopback`.
   */
  range: string;
}

/** Kinds refused even when private addresses are allowed: no server listens there. */
export const NEVER_ALLOWED: ReadonlySet<AddressKind> = new Set(['unspecified', 'multicast', 'broadcast']);

/** IPv6 ranges that carry an IPv4 address: the connection ends up at that IPv4 address. */
type Embedding = 'ipv4Mapped' | 'rfc6052' | '6to4';

/**
 * The meaning of every range name ipaddr.js 2.5 returns (its type declarations list fewer names than
 * its tables hold, hence a string key). A name missing here — one a later ipaddr.js adds — counts
 * as `reserved`: refused unless ALLOW_PRIVATE_URLS, the safe side.
 */
const KIND_OF_RANGE: Readonly<Record<string, AddressKind | Embedding>> = {
  unicast: 'public',
  unspecified: 'unspecified',
  broadcast: 'broadcast',
  multicast: 'multicast',
  linkLocal: 'link-local',
  loopback: 'loopback',
  private: 'private',
  carrierGradeNat: 'private',
  uniqueLocal: 'private',
  deprecatedSiteLocal: 'private',
  reserved: 'reserved',
  benchmarking: 'reserved',
  amt: 'reserved',
  as112: 'reserved',
  as112v6: 'reserved',
  discard: 'reserved',
  rfc6145: 'reserved',
  teredo: 'reserved',
  deprecatedOrchid: 'reserved',
  orchid2: 'reserved',
  droneRemoteIdProtocolEntityTags: 'reserved',
  segmentRouting: 'reserved',
  ipv4Mapped: 'ipv4Mapped',
  rfc6052: 'rfc6052',
  '6to4': '6to4',
};

/** ::/96 (IPv4-compatible, deprecated by RFC 4291); ipaddr.js calls it unicast. */
const IPV4_COMPATIBLE = ipaddr.IPv6.parseCIDR('::/96');
/** 64:ff9b:1::/48 (RFC 8215, local-use NAT64), which ipaddr.js files under rfc6052 with 64:ff9b::/96. */
const LOCAL_USE_NAT64 = ipaddr.IPv6.parseCIDR('64:ff9b:1::/48');

/**
 * The address as ipaddr.js's object, or null when it is not an IP address. Accepts `[v6]` brackets
 * and a `%zone` suffix; IPv4 only in strict dotted-decimal form (what `URL.hostname` and resolvers
 * produce), so `1.2.3` or `0x7f.1` are not taken for addresses.
 */
export function parseAddress(address: string): ipaddr.IPv4 | ipaddr.IPv6 | null {
  const plain = address.replace(/^\[(.*)\]$/, '$1');
  if (ipaddr.IPv4.isValidFourPartDecimal(plain)) return ipaddr.IPv4.parse(plain);
  if (ipaddr.IPv6.isValid(plain)) return ipaddr.IPv6.parse(plain);
  return null;
}

/** The IPv4 address an IPv6 address of an embedding range carries. */
function embeddedIPv4(address: ipaddr.IPv6, embedding: Embedding): ipaddr.IPv4 {
  const p = address.parts;
  if (embedding === 'ipv4Mapped') return address.toIPv4Address();
  // 6to4 (RFC 3056) carries it in bits 16–47, NAT64 64:ff9b::/96 (RFC 6052) in the last 32 bits.
  const [hi, lo] = embedding === '6to4' ? [p[1], p[2]] : [p[6], p[7]];
  return new ipaddr.IPv4([hi >> 8, hi & 0xff, lo >> 8, lo & 0xff]);
}

/**
 * Classifies an IPv4 or IPv6 address (`[v6]` brackets and `%zone` accepted). An IPv4 address
 * carried inside IPv6 — IPv4-mapped `::ffff:a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16` —
 * gets the kind of the IPv4 address, since that is where a connection ends up.
 *
 * @throws TypeError when `address` is not an IP address
 */
export function classifyAddress(address: string): AddressClass {
  const parsed = parseAddress(address);
  if (!parsed) throw new TypeError(`not an IP address: ${JSON.stringify(address)}`);
  return classify(parsed);
}

function classify(address: ipaddr.IPv4 | ipaddr.IPv6): AddressClass {
  const range = address.range();
  const meaning = KIND_OF_RANGE[range] ?? 'reserved';
  if (address.kind() === 'ipv6') {
    const v6 = address as ipaddr.IPv6;
    if (meaning === 'public' && v6.match(IPV4_COMPATIBLE)) return { kind: 'reserved', range: 'ipv4Compatible' };
    if (meaning === 'rfc6052' && v6.match(LOCAL_USE_NAT64)) return { kind: 'private', range: 'rfc6052 (local use)' };
    if (meaning === 'ipv4Mapped' || meaning === 'rfc6052' || meaning === '6to4') {
      const inner = classify(embeddedIPv4(v6, meaning));
      return { kind: inner.kind, range: `${range} > ${inner.range}` };
    }
  }
  return { kind: meaning as AddressKind, range };
}

/** Whether a connection to an address of this class is allowed (`allowPrivate`: ALLOW_PRIVATE_URLS). */
export function addressAllowed(cls: AddressClass, allowPrivate: boolean): boolean {
  if (cls.kind === 'public') return true;
  return allowPrivate && !NEVER_ALLOWED.has(cls.kind);
}

/** True for an IP literal (what `URL.hostname` gives for `http://1.2.3.4/` or `http://[::1]/`). */
export const isIpLiteral = (host: string): boolean => parseAddress(host) !== null;
