import { describe, expect, it } from 'vitest';
import { ProviderSlots } from '../../../src/controller/provider-slots.js';

function slots(workers: number) {
  const woken: string[] = [];
  let now = 0;
  const s = new ProviderSlots({ workers, wake: (k) => woken.push(k), activeWindowMs: 1000, now: () => now });
  return { s, woken, advance: (ms: number) => (now += ms) };
}

describe('ProviderSlots', () => {
  it('lets a provider alone use every worker', () => {
    const { s } = slots(4);
    const held = ['a', 'b', 'c', 'd'].map((k) => s.acquire('p', k));
    expect(held.every(Boolean)).toBe(true);
    expect(s.acquire('p', 'e')).toBeUndefined();
  });

  it('splits the workers between providers with work, parking keys beyond the share', () => {
    const { s, woken } = slots(4);
    expect(s.acquire('healthy', 'h0')).toBeDefined();
    const stuck = ['s1', 's2', 's3'].map((k) => s.acquire('stuck', k));
    // Two providers active: two workers each at most.
    expect(stuck.filter(Boolean)).toHaveLength(2);
    expect(s.parkedCount('stuck')).toBe(1);
    expect(woken).toEqual([]);
    stuck[0]?.release('other');
    expect(woken).toEqual(['s3']);
    expect(s.parkedCount('stuck')).toBe(0);
  });

  it('limits a provider that does not answer to one reconcile until one succeeds', () => {
    const { s, woken, advance } = slots(8);
    s.acquire('other', 'o');
    const stuck = ['s1', 's2', 's3', 's4'].map((k) => s.acquire('stuck', k));
    expect(stuck.every(Boolean)).toBe(true);
    advance(10_000);
    stuck[0]?.release('unavailable');
    stuck[1]?.release('unavailable');
    // Two failures in a row are not yet "down".
    expect(s.isUnresponsive('stuck')).toBe(false);
    stuck[2]?.release('unavailable');
    expect(s.isUnresponsive('stuck')).toBe(true);
    expect(s.share('stuck')).toBe(1);
    expect(s.acquire('stuck', 's5')).toBeUndefined();
    expect(woken).toEqual([]);
    stuck[3]?.release('unavailable');
    // Nothing in flight any more: exactly one parked key may go.
    expect(woken).toEqual(['s5']);
    const probe = s.acquire('stuck', 's5');
    expect(probe).toBeDefined();
    probe?.release('ok');
    expect(s.isUnresponsive('stuck')).toBe(false);
    expect(s.share('stuck')).toBe(4);
  });

  it('keeps the share of a provider that fails now and then but also succeeds', () => {
    const { s, advance } = slots(8);
    for (let i = 0; i < 20; i++) {
      advance(1_000);
      const a = s.acquire('flaky', `f${i}`);
      const b = s.acquire('flaky', `g${i}`);
      a?.release('unavailable');
      b?.release(i % 3 === 0 ? 'ok' : 'unavailable');
      // Failures in a row, but a success within the last 10 s: not down.
      expect(s.isUnresponsive('flaky')).toBe(false);
    }
    expect(s.share('flaky')).toBe(8);
  });

  it('stops counting a provider that had no work for the active window', () => {
    const { s, advance } = slots(4);
    s.acquire('a', 'a1')?.release('ok');
    expect(s.share('b')).toBe(2);
    advance(2000);
    expect(s.share('b')).toBe(4);
  });

  it('never parks a key while its provider has nothing in flight', () => {
    const { s } = slots(1);
    s.acquire('a', 'a1');
    const b = s.acquire('b', 'b1');
    expect(b).toBeDefined();
  });

  it('passes the turn of a woken key that takes no slot to the next parked key', () => {
    const { s, woken } = slots(2);
    const a = s.acquire('p', 'a');
    const b = s.acquire('p', 'b');
    for (const k of ['c', 'd', 'e']) expect(s.acquire('p', k)).toBeUndefined();
    a?.release('ok');
    b?.release('ok');
    expect(woken).toEqual(['c', 'd']);
    // c's client was deleted meanwhile (reconciled without a slot); d moved to another provider.
    s.skip('c');
    s.acquire('q', 'd')?.release('ok');
    // Neither took a slot of p: e, still parked, gets its turn; nothing is left behind.
    expect(woken).toEqual(['c', 'd', 'e']);
    expect(s.acquire('p', 'e')).toBeDefined();
    expect(s.parkedCount('p')).toBe(0);
  });

  it('forgets a parking once the key runs (it was queued again meanwhile)', () => {
    const { s, woken } = slots(1);
    const a = s.acquire('p', 'a');
    expect(s.acquire('p', 'b')).toBeUndefined();
    a?.release('ok');
    expect(woken).toEqual(['b']);
    // b runs; a later parking of c is woken by b's release, and b is not woken a second time.
    const b = s.acquire('p', 'b');
    expect(s.acquire('p', 'c')).toBeUndefined();
    b?.release('ok');
    expect(woken).toEqual(['b', 'c']);
    expect(s.parkedCount('p')).toBe(0);
  });

  it('does not strand parked keys when a parked key is reconciled by a later event and then deleted', () => {
    const { s, woken } = slots(1);
    const a = s.acquire('p', 'a');
    expect(s.acquire('p', 'x')).toBeUndefined();
    expect(s.acquire('p', 'y')).toBeUndefined();
    a?.release('ok');
    expect(woken).toEqual(['x']);
    // An informer event put y in the queue first: it runs, finishes, its client is gone.
    s.acquire('p', 'y')?.release('ok');
    // x was woken for that freed slot and still is owed it; y's release wakes no one twice.
    expect(woken).toEqual(['x']);
    s.skip('y');
    s.acquire('p', 'x')?.release('ok');
    expect(s.parkedCount('p')).toBe(0);
  });
});
