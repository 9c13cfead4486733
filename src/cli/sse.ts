/**
 * A Server-Sent Events decoder (the WHATWG `text/event-stream` format) for the CLI, which reads
 * `GET /api/transcribe/jobs/stream/:job_id` through fetch: EventSource cannot send the API key
 * header. Pure: text in, messages out; no I/O.
 */

/** One dispatched event. `data` is the `data:` lines joined by `\n` (the gateway sends one JSON object per event). */
export interface SseMessage {
  /** `event:` field; `message` when absent. */
  event: string;
  data: string;
  /** `id:` field, when present. */
  id?: string;
}

/**
 * Incremental decoder: feed it text as it arrives (chunks may split lines anywhere, including
 * between `\r` and `\n`) and it returns the events completed by that text. Lines end with
 * `\r\n`, `\n` or `\r`; a blank line dispatches; `:` lines are comments (keep-alives); an
 * event with no `data:` line is dropped, as browsers do. An unterminated event at the end of the
 * stream is discarded (the format requires the blank line).
 */
export class SseDecoder {
  private buffer = '';
  private data: string[] = [];
  private event = '';
  private id: string | undefined;

  feed(text: string): SseMessage[] {
    this.buffer += text;
    const out: SseMessage[] = [];
    let start = 0;
    for (let i = 0; i < this.buffer.length; i++) {
      const ch = this.buffer[i];
      if (ch !== '\n' && ch !== '\r') continue;
      // A trailing `\r` may be the first half of `\r\n`: wait for the next chunk to decide.
      if (ch === '\r' && i === this.buffer.length - 1) break;
      this.line(this.buffer.slice(start, i), out);
      if (ch === '\r' && this.buffer[i + 1] === '\n') i++;
      start = i + 1;
    }
    this.buffer = this.buffer.slice(start);
    return out;
  }

  private line(line: string, out: SseMessage[]): void {
    if (line === '') {
      if (this.data.length > 0) out.push({ event: this.event || 'message', data: this.data.join('\n'), ...(this.id !== undefined ? { id: this.id } : {}) });
      this.data = [];
      this.event = '';
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.event = value;
    else if (field === 'id' && !value.includes('\0')) this.id = value;
  }
}
