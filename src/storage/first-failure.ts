import type { Stream } from 'node:stream';

/**
 * Remembers which stream of a pipeline emitted an error first. A failing pipeline destroys every
 * stream with the first error, so `errored` and the rejection do not say whose failure it was;
 * the first `error` event does. Drivers use it to tell a caller's failing source (rethrown as it
 * is) from their own write failing (a storage error).
 *
 * @returns a function giving the name of the first stream that failed, or undefined
 */
export function firstFailure<Name extends string>(streams: Record<Name, Stream | undefined>): () => Name | undefined {
  let first: Name | undefined;
  for (const [name, stream] of Object.entries(streams) as [Name, Stream | undefined][]) {
    stream?.once('error', () => (first ??= name));
  }
  return () => first;
}
