import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { assertNotFenced, DeadlineFence, FencedError, FenceSlot, NO_FENCE } from '../../../src/kube/fence.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('DeadlineFence', () => {
  it('closes for new work at the soft deadline and cuts off in-flight work at the hard one', async () => {
    const fence = new DeadlineFence();
    const t = performance.now();
    fence.extend(t + 60, t + 600);
    expect(fence.signal.aborted).toBe(false);
    await sleep(100);
    expect(fence.signal.aborted).toBe(true);
    expect(fence.hardSignal.aborted).toBe(false);
    expect(() => assertNotFenced(fence.signal)).toThrow(FencedError);
    await sleep(600);
    expect(fence.hardSignal.aborted).toBe(true);
    expect(fence.hardSignal.reason).toBeInstanceOf(FencedError);
  });

  it('reports an overdue deadline when read, before its timer ran (a paused process)', () => {
    const fence = new DeadlineFence();
    const t = performance.now();
    fence.extend(t + 20, t + 40);
    // Block the event loop past both deadlines: no timer can fire meanwhile.
    while (performance.now() < t + 50) {
      /* busy */
    }
    expect(fence.signal.aborted).toBe(true);
    expect(fence.hardSignal.aborted).toBe(true);
  });

  it('renewals move the deadlines; after end() only the hard one moves', async () => {
    const fence = new DeadlineFence();
    let t = performance.now();
    fence.extend(t + 300, t + 600);
    await sleep(200);
    t = performance.now();
    fence.extend(t + 300, t + 600);
    await sleep(200);
    // 400 ms after the first renewal: only the second one keeps it open.
    expect(fence.signal.aborted).toBe(false);
    fence.end('stopping');
    expect(fence.signal.aborted).toBe(true);
    expect(String(fence.signal.reason)).toContain('stopping');
    t = performance.now();
    fence.extend(t + 100, t + 900);
    await sleep(600);
    // Past the hard deadline of the second renewal (600 ms), within the third's.
    expect(fence.hardSignal.aborted).toBe(false);
    await sleep(500);
    expect(fence.hardSignal.aborted).toBe(true);
  });

  it('cuts off at once when another holder took the lease', () => {
    const fence = new DeadlineFence();
    const t = performance.now();
    fence.extend(t + 10_000, t + 20_000);
    fence.end('held by other', { cutOff: true });
    expect(fence.signal.aborted).toBe(true);
    expect(fence.hardSignal.aborted).toBe(true);
  });

  it('FenceSlot follows the fence set later; NO_FENCE never aborts', () => {
    const slot = new FenceSlot();
    expect(slot.signal).toBe(NO_FENCE.signal);
    const fence = new DeadlineFence();
    slot.set(fence);
    fence.end('over', { cutOff: true });
    expect(slot.signal.aborted).toBe(true);
    expect(slot.hardSignal.aborted).toBe(true);
    expect(NO_FENCE.signal.aborted).toBe(false);
  });
});
