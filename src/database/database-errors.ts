/** Socket-level failures of the connection to PostgreSQL. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/**
 * Whether an error means "PostgreSQL cannot be reached right now" rather than "this statement is
 * wrong": connection refused, reset or timed out; the server shutting down, starting up or in
 * recovery (SQLSTATE 57P01-57P03); any connection exception (SQLSTATE class 08). Looks through
 * TypeORM's QueryFailedError.driverError and `cause`. A job that meets one of these is not at fault.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && typeof e === 'object' && depth < 4; depth++) {
    const { code, message } = e as { code?: unknown; message?: unknown };
    if (typeof code === 'string' && (NETWORK_CODES.has(code) || /^57P0[123]$/.test(code) || code.startsWith('08'))) return true;
    if (typeof message === 'string' && /Connection terminated|terminating connection|the database system is (starting up|shutting down|in recovery mode)/i.test(message)) return true;
    e = (e as { driverError?: unknown }).driverError ?? (e as { cause?: unknown }).cause;
  }
  return false;
}
