import { AddressRefusedError, bareHostname, checkHost, type HostResolver } from '../common/outbound/address-guard.js';
import { isIpLiteral, NEVER_ALLOWED } from '../common/outbound/ip-ranges.js';
import { WebhookError } from './webhook.errors.js';

export type { HostResolver } from '../common/outbound/address-guard.js';

/** Longest accepted callback URL, in characters (the column is `text`; this bounds abuse). */
export const CALLBACK_URL_MAX_LENGTH = 2048;

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
 * the rule is src/common/outbound/, shared with `audio_url` downloads). Unspecified, multicast and
 * broadcast addresses are refused even with `allowPrivate`. This early check only gives the client
 * a clear 400 at submission: what protects is the same rule applied again when each delivery
 * attempt connects (WebhookSender), since DNS may answer differently by then.
 *
 * @throws WebhookError WEBHOOKS_NOT_CONFIGURED, CALLBACK_URL_INVALID (also when the host does not
 *   resolve), CALLBACK_URL_FORBIDDEN (HTTP 400 each).
 */
export async function validateCallbackUrl(raw: string, policy: CallbackUrlPolicy): Promise<string> {
  if (!policy.secretConfigured) {
    throw new WebhookError('WEBHOOKS_NOT_CONFIGURED', 'callback_url cannot be used: this gateway has no WEBHOOK_SECRET to sign webhooks with');
  }
  const invalid = (why: string, cause?: unknown) => new WebhookError('CALLBACK_URL_INVALID', `callback_url ${why}`, { publicFields: { callback_url: raw.slice(0, 200) }, cause });
  if (raw.length === 0 || raw.length > CALLBACK_URL_MAX_LENGTH) throw invalid(`must be 1 to ${CALLBACK_URL_MAX_LENGTH} characters`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw invalid('must be an absolute http:// or https:// URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalid(`must use http or https, not ${url.protocol.replace(/:$/, '')}`);
  if (url.username || url.password) throw invalid('must not contain user:password (requests are authenticated by X-Webhook-Signature)');
  const host = bareHostname(url);
  // With ALLOW_PRIVATE_URLS a name is not resolved here: it may resolve only inside the workers' network.
  if (isIpLiteral(host) || !policy.allowPrivate) {
    try {
      await checkHost(host, { allowPrivate: policy.allowPrivate, ...(policy.resolve ? { resolve: policy.resolve } : {}) });
    } catch (err) {
      if (!(err instanceof AddressRefusedError)) throw invalid(`host ${host} does not resolve`, err);
      const { kind, range } = err.addressClass;
      const subject = err.literal ? `host ${host} is` : `host ${host} resolves to`;
      const hint = NEVER_ALLOWED.has(kind) || policy.allowPrivate ? 'no receiver can listen there' : 'private, loopback and link-local hosts are allowed only with ALLOW_PRIVATE_URLS=true';
      throw new WebhookError('CALLBACK_URL_FORBIDDEN', `callback_url ${subject} a ${kind} address; ${hint}`, {
        publicFields: { callback_url: raw.slice(0, 200), address_kind: kind },
        details: { address: err.address, range },
      });
    }
  }
  return url.toString();
}
