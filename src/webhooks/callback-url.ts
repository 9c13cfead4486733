import { lookup as dnsLookup } from 'node:dns/promises';
import { addressAllowed, classifyAddress, isIpLiteral } from '../audio/ip-ranges.js';
import { WebhookError } from './webhook.errors.js';

/** Longest accepted callback URL, in characters (the column is `text`; this bounds abuse). */
export const CALLBACK_URL_MAX_LENGTH = 2048;

/** Resolves a host name to every address it has (node:dns `lookup` with `all: true`). */
export type HostResolver = (hostname: string) => Promise<string[]>;

const systemResolver: HostResolver = async (hostname) => (await dnsLookup(hostname, { all: true, verbatim: true })).map((a) => a.address);

/** Options of {@link validateCallbackUrl}. */
export interface CallbackUrlPolicy {
  /** Whether WEBHOOK_SECRET is set; without it webhooks cannot be signed and callback_url is refused. */
  secretConfigured: boolean;
  /** ALLOW_PRIVATE_URLS: accept hosts on private, loopback and link-local networks. */
  allowPrivate: boolean;
  /** Host resolution (tests pass their own); default: the system resolver. */
  resolve?: HostResolver;
}

/**
 * Checks a submission's `callback_url` and returns it normalized (WHATWG URL serialization).
 *
 * Rules: WEBHOOK_SECRET must be set; an absolute `http:` or `https:` URL of at most 2048
 * characters, without `user:password@` (receivers authenticate requests by their signature, and
 * credentials would be stored in the job row); unless `allowPrivate`, the host must not be — or
 * resolve to — a private, loopback, link-local or reserved address (server-side request forgery;
 * the classification is src/audio/ip-ranges.ts, shared with `audio_url` downloads). Unspecified,
 * multicast and broadcast addresses are refused even with `allowPrivate`. The same rule is applied
 * again when each attempt connects (DNS may change in between).
 *
 * @throws WebhookError WEBHOOKS_NOT_CONFIGURED, CALLBACK_URL_INVALID (also when the host does not
 *   resolve), CALLBACK_URL_FORBIDDEN (HTTP 400 each).
 */
export async function validateCallbackUrl(raw: string, policy: CallbackUrlPolicy): Promise<string> {
  if (!policy.secretConfigured) {
    throw new WebhookError('WEBHOOKS_NOT_CONFIGURED', 'callback_url cannot be used: this gateway has no WEBHOOK_SECRET to sign webhooks with');
  }
  const invalid = (why: string) => new WebhookError('CALLBACK_URL_INVALID', `callback_url ${why}`, { callback_url: raw.slice(0, 200) });
  if (raw.length === 0 || raw.length > CALLBACK_URL_MAX_LENGTH) throw invalid(`must be 1 to ${CALLBACK_URL_MAX_LENGTH} characters`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw invalid('must be an absolute http:// or https:// URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalid(`must use http or https, not ${url.protocol.replace(/:$/, '')}`);
  if (url.username || url.password) throw invalid('must not contain user:password (requests are authenticated by X-Webhook-Signature)');
  const host = url.hostname.replace(/^\[|\]$/g, '');
  // With ALLOW_PRIVATE_URLS a name is not resolved here: it may resolve only inside the workers' network.
  if (isIpLiteral(host) || !policy.allowPrivate) {
    let addresses: string[];
    if (isIpLiteral(host)) {
      addresses = [host];
    } else {
      try {
        addresses = await (policy.resolve ?? systemResolver)(host);
      } catch {
        throw invalid(`host ${host} does not resolve`);
      }
    }
    const refused = addresses.map((a) => ({ address: a, cls: classifyAddress(a) })).find((a) => !addressAllowed(a.cls, policy.allowPrivate));
    if (refused !== undefined || addresses.length === 0) {
      throw new WebhookError(
        'CALLBACK_URL_FORBIDDEN',
        `callback_url host ${host} is ${refused ? `a ${refused.cls.kind} address (${refused.address !== host ? `${refused.address} in ` : ''}${refused.cls.range})` : 'without addresses'}; ` +
          (policy.allowPrivate ? 'no server can be reached there' : 'private, loopback and link-local hosts are allowed only with ALLOW_PRIVATE_URLS=true'),
        { callback_url: raw.slice(0, 200) },
      );
    }
  }
  return url.toString();
}
