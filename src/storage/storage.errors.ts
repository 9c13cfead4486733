import { HttpStatus } from '@nestjs/common';
import { GatewayError } from '../common/gateway-error.js';

/** Failures of an object operation (put, read, download, delete, list) that can reach a client. */
export type StorageErrorCode =
  /** The object a job refers to is not in the store (deleted by retention, or never completely stored). */
  | 'STORAGE_OBJECT_NOT_FOUND'
  /** The store failed or could not be reached (S3 error, network, disk full, permissions). */
  | 'STORAGE_UNAVAILABLE';

/**
 * HTTP status of every StorageErrorCode. 410: the audio existed and is gone (like the jobs module's
 * AUDIO_GONE). 503: the store's failure, not the client's; retrying may help.
 */
export const STORAGE_ERROR_STATUS: Record<StorageErrorCode, number> = {
  STORAGE_OBJECT_NOT_FOUND: HttpStatus.GONE,
  STORAGE_UNAVAILABLE: HttpStatus.SERVICE_UNAVAILABLE,
};

/**
 * A storage failure, translated from the vendor's error at the driver. The public message names
 * neither the store's endpoint, bucket, object key nor file path: those are private `details`
 * (logs and `error_details` only), the vendor error is the `cause`.
 */
export class StorageError extends GatewayError {
  constructor(
    readonly code: StorageErrorCode,
    message: string,
    fields: { details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, { status: STORAGE_ERROR_STATUS[code], retryable: code === 'STORAGE_UNAVAILABLE', details: fields.details, cause: fields.cause });
  }
}

/** Raised by drivers for keys that do not exist (S3 `NoSuchKey`/`NotFound`, ENOENT). Not retryable. */
export class StorageNotFoundError extends StorageError {
  constructor(
    /** The missing object's key (private: also in `details`). */
    readonly key: string,
    cause?: unknown,
  ) {
    super('STORAGE_OBJECT_NOT_FOUND', 'the stored audio no longer exists', { details: { key }, cause });
  }
}

/**
 * STORAGE_UNAVAILABLE for a failed operation.
 * @param operation what was being done, in words (`storing`, `reading`…), for the public message
 * @param details where (driver, endpoint, bucket, key, path) and the vendor's code and message
 */
export function storageUnavailable(operation: string, details: Record<string, unknown>, cause: unknown): StorageError {
  return new StorageError('STORAGE_UNAVAILABLE', `the audio store failed while ${operation} the audio; try again later`, { details, cause });
}
