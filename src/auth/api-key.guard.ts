import {
  createParamDecorator,
  Injectable,
  Logger,
  SetMetadata,
  type CanActivate,
  type ExecutionContext,
  type OnModuleInit,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request, Response } from 'express';
import { ANONYMOUS_KEY_LABEL } from '../metrics/metrics.service.js';
import { AccessError } from './access.errors.js';
import { ApiKeys } from './api-keys.js';

/** Metadata key set by {@link Public}. */
export const IS_PUBLIC = 'gateway:public';

/**
 * Marks a controller or route as reachable without an API key, and outside rate limiting:
 * health probes (`/health`, `/health/live`, `/health/ready`) and the Prometheus scrape
 * (`/metrics`). Keys sent to a public route are ignored, not checked.
 */
export const Public = () => SetMetadata(IS_PUBLIC, true);

/** Whether the route of `context` (handler, else its class) is marked {@link Public}. */
export function isPublicRoute(reflector: Reflector, context: ExecutionContext): boolean {
  return reflector.getAllAndOverride<boolean | undefined>(IS_PUBLIC, [context.getHandler(), context.getClass()]) === true;
}

/** A request that passed ApiKeyGuard. */
export interface KeyedRequest extends Request {
  /**
   * First 8 hex characters of the SHA-256 of the key used, or `anonymous` when authentication is
   * off; the `api_key` metrics label. The key itself is never stored on the request.
   */
  apiKeyLabel?: string;
}

/** The label ApiKeyGuard stored on a request (`anonymous` when none). */
export function requestKeyLabel(req: Request): string {
  return (req as KeyedRequest).apiKeyLabel ?? ANONYMOUS_KEY_LABEL;
}

/** Route parameter: the calling key's label (see {@link KeyedRequest.apiKeyLabel}), e.g. for a job's metrics label. */
export const ApiKeyLabel = createParamDecorator((_data: unknown, context: ExecutionContext): string =>
  requestKeyLabel(context.switchToHttp().getRequest<Request>()),
);

/** `WWW-Authenticate` value sent with a 401 (RFC 6750 §3). */
export const WWW_AUTHENTICATE = 'Bearer realm="transcription-gateway"';

/**
 * Global guard: every HTTP route except {@link Public} ones needs one of the configured keys,
 * sent as `Authorization: Bearer <key>` or `X-API-Key: <key>`. SSE routes are checked once, when
 * the stream is opened.
 *
 * - no key → 401 API_KEY_REQUIRED with `WWW-Authenticate: Bearer realm="transcription-gateway"`
 * - a key that is not configured → 403 API_KEY_INVALID
 *
 * With no key configured (API_KEYS and ASR_TOKEN empty) every route is open; a warning says so
 * at boot. Keys are compared as SHA-256 digests in constant time and never logged.
 */
@Injectable()
export class ApiKeyGuard implements CanActivate, OnModuleInit {
  private readonly logger = new Logger('ApiKeyGuard');

  constructor(
    private readonly keys: ApiKeys,
    private readonly reflector: Reflector,
  ) {}

  onModuleInit(): void {
    if (!this.keys.enabled) {
      this.logger.warn('no API keys configured (API_KEYS, ASR_TOKEN): every endpoint is open to anyone who can reach it');
      return;
    }
    this.logger.log(`API key authentication on: ${this.keys.labels.length} key(s), labels ${this.keys.labels.join(', ')}`);
    if (this.keys.weakLabels.length > 0) {
      this.logger.warn(`API key(s) ${this.keys.weakLabels.join(', ')} are shorter than 16 characters and within reach of guessing`);
    }
  }

  canActivate(context: ExecutionContext): boolean {
    if (context.getType() !== 'http' || isPublicRoute(this.reflector, context)) return true;
    const req = context.switchToHttp().getRequest<KeyedRequest>();
    const check = this.keys.check(req.headers);
    switch (check.status) {
      case 'open':
      case 'valid':
        req.apiKeyLabel = check.label;
        return true;
      case 'missing':
        context.switchToHttp().getResponse<Response>().setHeader('WWW-Authenticate', WWW_AUTHENTICATE);
        throw new AccessError('API_KEY_REQUIRED', 'send an API key as Authorization: Bearer <key> or x-api-key');
      case 'invalid':
        throw new AccessError('API_KEY_INVALID', 'the API key is not valid');
    }
  }
}
