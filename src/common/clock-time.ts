/**
 * A duration or a position in a recording as people read it: `h:mm:ss`, or `m:ss` under an hour,
 * rounded down to whole seconds (`clockTime(300)` → `5:00`, `clockTime(10_800)` → `3:00:00`).
 * @param seconds ≥ 0 (negative counts as 0).
 */
export function clockTime(seconds: number): string {
  const total = Math.max(0, Math.floor(seconds));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}
