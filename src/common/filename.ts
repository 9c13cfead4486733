import path from 'node:path';

/** Keeps the client's file name readable but harmless: no directories, no control characters, ≤ 200 chars. */
export function sanitizeFilename(name: string): string {
  const base = path.basename(name.replace(/\\/g, '/')).normalize('NFC');
  // eslint-disable-next-line no-control-regex
  const cleaned = base.replace(/[\u0000-\u001f\u007f/]/g, '').replace(/^\.+/, '').trim();
  return (cleaned || 'audio').slice(0, 200);
}
