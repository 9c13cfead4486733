import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import type { LookupFunction } from 'node:net';
import { addressAllowed, classifyAddress, isIpLiteral, type AddressClass } from './ip-ranges.js';

/**
 * The one guard against server-side request forgery for outbound HTTP on a client's behalf
 * (`audio_url` downloads, webhook deliveries). The check runs where the connection is made: in
 * the `lookup` hook that node:net calls to resolve the host of each new connection. Every address
 * of the answer must pass the policy, and the socket then connects to one of exactly those
 * addresses — there is no second resolution, so a name that resolves to a public address when
 * a URL is validated and to an internal one when it is fetched (DNS rebinding) is refused. Each
 * redirect is a new request, hence a new check.
 *
 * node:net does not call `lookup` for IP literals; {@link guardedConnectOptions} checks those
 * itself before the request starts.
 */

/** Resolves a host name to every address it has. Default: the OS resolver (/etc/hosts, then DNS). */
export type HostResolver = (hostname: string, options?: { family?: number; hints?: number }) => Promise<LookupAddress[]>;

/** Whom the gateway may connect to. */
export interface AddressPolicy {
  /** ALLOW_PRIVATE_URLS: also private, loopback, link-local and reserved addresses (never unspecified, multicast, broadcast). */
  allowPrivate: boolean;
  /** Host name resolution; tests map names to their own servers. Default {@link systemResolver}. */
  resolve?: HostResolver;
}

/**
 * A connection refused by the policy. Its message names the address and its range: it is meant
 * for logs and delivery records. Callers that answer clients build their own message from the
 * fields, without the resolved address (a name may resolve to an internal host).
 */
export class AddressRefusedError extends Error {
  readonly code = 'ERR_ADDRESS_REFUSED';

  constructor(
    /** The host as the URL named it (name or literal, without brackets). */
    readonly host: string,
    /** The refused address (for a literal, the host itself). */
    readonly address: string,
    readonly addressClass: AddressClass,
  ) {
    const via = host === address ? '' : ` (${host} resolves to it)`;
    super(`refused to connect to ${address}, a ${addressClass.kind} address (${addressClass.range})${via}; see ALLOW_PRIVATE_URLS`);
    this.name = 'AddressRefusedError';
  }

  /** Whether the URL named the address itself rather than a host name. */
  get literal(): boolean {
    return this.host === this.address;
  }
}

/** `dns.lookup` with `all: true`, in the process's default result order (what node:net does itself). */
export const systemResolver: HostResolver = (hostname, options = {}) =>
  new Promise((resolve, reject) =>
    dnsLookup(hostname, { family: options.family ?? 0, ...(options.hints ? { hints: options.hints } : {}), all: true }, (err, addresses) =>
      err ? reject(err) : resolve(addresses),
    ),
  );

/** @throws AddressRefusedError when the policy forbids `address` (`host` is for the message). */
export function assertAddressAllowed(host: string, address: string, policy: AddressPolicy): void {
  const cls = classifyAddress(address);
  if (!addressAllowed(cls, policy.allowPrivate)) throw new AddressRefusedError(host, address, cls);
}

/** `URL.hostname` without the brackets of an IPv6 literal. */
export const bareHostname = (url: URL): string => url.hostname.replace(/^\[(.*)\]$/, '$1');

/**
 * Resolves `host` (an IP literal is its own answer) and checks every address, without connecting.
 * For early, friendlier refusals (a callback URL at submission); the connection is checked again
 * by the lookup hook, which is what actually protects.
 *
 * @throws AddressRefusedError for the first refused address
 * @throws the resolver's error (`ENOTFOUND`…) when the name does not resolve
 */
export async function checkHost(host: string, policy: AddressPolicy): Promise<LookupAddress[]> {
  const addresses = isIpLiteral(host) ? [{ address: host, family: host.includes(':') ? 6 : 4 }] : await (policy.resolve ?? systemResolver)(host);
  if (addresses.length === 0) throw notFound(host);
  for (const { address } of addresses) assertAddressAllowed(host, address, policy);
  return addresses;
}

function notFound(host: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND', hostname: host });
}

/**
 * A `lookup` for node:http/https/net that resolves with the policy's resolver, refuses the whole
 * host when any of its addresses is refused (AddressRefusedError reaches the request's `error`
 * event), and otherwise answers with the checked addresses only.
 */
export function guardedLookup(policy: AddressPolicy): LookupFunction {
  const resolve = policy.resolve ?? systemResolver;
  return (hostname, options, callback) => {
    const family = options.family === 'IPv4' ? 4 : options.family === 'IPv6' ? 6 : (options.family ?? 0);
    resolve(hostname, { family, hints: options.hints })
      .then((addresses) => {
        for (const { address } of addresses) assertAddressAllowed(hostname, address, policy);
        const usable = family === 0 ? addresses : addresses.filter((a) => a.family === family);
        if (usable.length === 0) throw notFound(hostname);
        return usable;
      })
      .then(
        (usable) => {
          if (options.all) callback(null, usable);
          else callback(null, usable[0].address, usable[0].family);
        },
        (err: NodeJS.ErrnoException) => callback(err, '', 0),
      );
  };
}

/**
 * Options to merge into `http.request`/`https.request` so the connection goes only where
 * `policy` allows: the guarded `lookup`, and no agent (every request on a fresh socket, so no
 * pooled connection skips the check).
 *
 * @throws AddressRefusedError at once when the URL's host is an IP literal the policy refuses
 */
export function guardedConnectOptions(url: URL, policy: AddressPolicy): { lookup: LookupFunction; agent: false } {
  const host = bareHostname(url);
  if (isIpLiteral(host)) assertAddressAllowed(host, host, policy);
  return { lookup: guardedLookup(policy), agent: false };
}
