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
});
