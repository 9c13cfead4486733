import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { scratchDir } from './env.js';

/**
 * s3rver 3.7 (an S3-protocol server in Node, CommonJS without type declarations). It accepts only
 * the access key `S3RVER` (any other is answered AccessDenied/InvalidAccessKeyId) and does not
 * verify Signature V4, so the secret key is not checked; presigned URLs are checked for expiry
 * (403 AccessDenied "Request has expired"). It writes objects in place (a PUT aborted mid-body can
 * leave a partial file) and implements neither bucket lifecycle rules nor listing of multipart
 * uploads.
 */
interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
}
type S3rverClass = new (options: {
  port: number;
  address: string;
  silent: boolean;
  directory: string;
  resetOnClose: boolean;
  configureBuckets?: { name: string; configs: string[] }[];
}) => S3rverInstance;

const S3rver = createRequire(import.meta.url)('s3rver') as S3rverClass;

/** A running s3rver on 127.0.0.1 and an ephemeral port, with its data in a fresh temp directory. */
export interface S3TestServer {
  /** `127.0.0.1:<port>`, in the `host:port` form of MINIO_ENDPOINT. */
  endpoint: string;
  port: number;
  /** The only access key s3rver accepts. */
  accessKey: 'S3RVER';
  secretKey: 'S3RVER';
  /** Where s3rver keeps buckets and objects (emptied on close). */
  directory: string;
  /** Stops the server and removes its data; resolves once the port is closed. */
  close(): Promise<void>;
}

/**
 * Starts s3rver for one test suite.
 * @param buckets buckets to create before the server starts listening (none by default, so that
 *   tests see the gateway create its own).
 */
export async function startS3(buckets: string[] = []): Promise<S3TestServer> {
  const directory = scratchDir('s3');
  const server = new S3rver({
    port: 0,
    address: '127.0.0.1',
    silent: true,
    directory,
    resetOnClose: true,
    configureBuckets: buckets.map((name) => ({ name, configs: [] })),
  });
  const { port } = await server.run();
  let closed = false;
  return {
    endpoint: `127.0.0.1:${port}`,
    port,
    accessKey: 'S3RVER',
    secretKey: 'S3RVER',
    directory,
    close: async () => {
      if (closed) return;
      closed = true;
      await server.close();
    },
  };
}

/** A bucket name no other test run uses (S3 rules: 3-63 of a-z, 0-9, `-`). */
export const uniqueBucket = (prefix = 'test') => `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
