import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createParser, type EventSourceMessage } from 'eventsource-parser';

/** Submits a file (multipart) with extra form fields; returns status and parsed JSON body. */
export async function submit(
  baseUrl: string,
  filePath: string | null,
  fields: Record<string, string> = {},
  options: { route?: string; filename?: string; contentType?: string; body?: Buffer } = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  if (filePath !== null || options.body) {
    const data = options.body ?? (await readFile(filePath!));
    form.append('file', new Blob([new Uint8Array(data)], { type: options.contentType ?? 'application/octet-stream' }), options.filename ?? path.basename(filePath ?? 'upload.bin'));
  }
  const res = await fetch(`${baseUrl}${options.route ?? '/api/transcribe/jobs/transcribe'}`, { method: 'POST', body: form });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

export async function getJson<T = Record<string, unknown>>(url: string): Promise<{ status: number; body: T }> {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as T };
}

/**
 * Follows an SSE stream until the server ends it (or `timeoutMs`), returning every event's parsed data.
 * @throws when the response is not an event stream or the timeout passes first.
 */
export async function followStream<T = Record<string, unknown>>(url: string, timeoutMs = 120_000): Promise<T[]> {
  const res = await fetch(url, { headers: { Accept: 'text/event-stream' }, signal: AbortSignal.timeout(timeoutMs) });
  if (res.status !== 200) throw new Error(`stream answered ${res.status}: ${await res.text()}`);
  if (!res.headers.get('content-type')?.includes('text/event-stream')) throw new Error(`not an event stream: ${res.headers.get('content-type')}`);
  const events: T[] = [];
  const parser = createParser({ onEvent: (e: EventSourceMessage) => events.push(JSON.parse(e.data) as T) });
  const decoder = new TextDecoder();
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) parser.feed(decoder.decode(chunk, { stream: true }));
  return events;
}
