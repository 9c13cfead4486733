import { SlidingWindowLimiter, type RateBucket } from '../../src/auth/throttle.js';

/** A limiter on a hand-driven clock (ms), so the window is tested without waiting. */
function limiter() {
  let now = 1_000_000;
  const l = new SlidingWindowLimiter(60_000, () => now);
  return { l, advance: (ms: number) => (now += ms) };
}

const all = (limit: number): RateBucket => ({ name: 'all', limit });
const submit = (limit: number): RateBucket => ({ name: 'submit', limit });

describe('SlidingWindowLimiter', () => {
  it('accepts `limit` requests per window, then refuses with the seconds until the oldest leaves it', () => {
    const { l, advance } = limiter();
    expect(l.take('key:a', [all(3)])).toEqual({ allowed: true, bucket: all(3), remaining: 2, resetSec: 60 });
    advance(10_000);
    expect(l.take('key:a', [all(3)]).remaining).toBe(1);
    advance(10_000);
    expect(l.take('key:a', [all(3)]).remaining).toBe(0);
    advance(5_000);
    // The first request (t=0) leaves the window at t=60 s; now is t=25 s.
    expect(l.take('key:a', [all(3)])).toEqual({ allowed: false, bucket: all(3), remaining: 0, resetSec: 35 });
  });

  it('does not count refused requests: a client is let in once its oldest request leaves the window', () => {
    const { l, advance } = limiter();
    l.take('key:a', [all(2)]);
    advance(30_000);
    l.take('key:a', [all(2)]);
    for (let i = 0; i < 5; i++) expect(l.take('key:a', [all(2)]).allowed).toBe(false);
    advance(30_000);
    const next = l.take('key:a', [all(2)]);
    expect(next.allowed).toBe(true);
    expect(next.remaining).toBe(0);
    expect(l.take('key:a', [all(2)])).toMatchObject({ allowed: false, resetSec: 30 });
  });

  it('keeps clients apart', () => {
    const { l } = limiter();
    expect(l.take('key:a', [all(1)]).allowed).toBe(true);
    expect(l.take('key:a', [all(1)]).allowed).toBe(false);
    expect(l.take('key:b', [all(1)]).allowed).toBe(true);
    expect(l.take('ip:127.0.0.1', [all(1)]).allowed).toBe(true);
  });

  it('counts a submission in both buckets, and a refused one in neither', () => {
    const { l } = limiter();
    expect(l.take('key:a', [all(5), submit(2)])).toMatchObject({ allowed: true, bucket: submit(2), remaining: 1 });
    expect(l.take('key:a', [all(5), submit(2)])).toMatchObject({ allowed: true, bucket: submit(2), remaining: 0 });
    expect(l.take('key:a', [all(5), submit(2)])).toMatchObject({ allowed: false, bucket: submit(2) });
    // Two requests were counted against `all`; the refused submission was not.
    expect(l.take('key:a', [all(5)])).toMatchObject({ allowed: true, remaining: 2 });
    expect(l.take('key:a', [all(5)])).toMatchObject({ allowed: true, remaining: 1 });
    expect(l.take('key:a', [all(5)])).toMatchObject({ allowed: true, remaining: 0 });
    expect(l.take('key:a', [all(5), submit(2)])).toMatchObject({ allowed: false, bucket: all(5) });
  });

  it('forgets clients whose requests all left the window', () => {
    const { l, advance } = limiter();
    l.take('key:a', [all(3), submit(1)]);
    l.take('key:b', [all(3)]);
    expect(l.size).toBe(3);
    advance(59_999);
    l.sweep();
    expect(l.size).toBe(3);
    advance(1);
    l.sweep();
    expect(l.size).toBe(0);
    expect(l.take('key:a', [all(3), submit(1)]).allowed).toBe(true);
  });
});
