import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { assertNotFenced, DeadlineFence, FencedError, FenceSlot, NO_FENCE } from '../../../src/kube/fence.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('DeadlineFence', () => {
  it('closes at the deadline', async () => {
    const fence = new DeadlineFence();
    fence.extend(performance.now() + 60);
    expect(fence.signal.aborted).toBe(false);
    expect(() => assertNotFenced(fence.signal)).not.toThrow();
    await sleep(150);
    expect(fence.signal.aborted).toBe(true);
    expect(fence.signal.reason).toBeInstanceOf(FencedError);
    expect(() => assertNotFenced(fence.signal)).toThrow(FencedError);
  });

  it('aborts listeners by its timer, without anyone reading it', async () => {
    const fence = new DeadlineFence();
    const signal = fence.signal;
    let fired = false;
    signal.addEventListener('abort', () => {
      fired = true;
    });
    fence.extend(performance.now() + 30);
    await sleep(150);
    expect(fired).toBe(true);
  });

  it('reports an overdue deadline when read, before its timer ran (a paused process)', () => {
    const fence = new DeadlineFence();
    const t = performance.now();
    fence.extend(t + 20);
    // Block the event loop past the deadline: no timer can fire meanwhile.
    while (performance.now() < t + 40) {
      /* busy */
    }
    expect(fence.signal.aborted).toBe(true);
  });

  it('renewals move the deadline; a closed fence stays closed', async () => {
    const fence = new DeadlineFence();
    fence.extend(performance.now() + 300);
    await sleep(200);
    fence.extend(performance.now() + 300);
    await sleep(200);
    // 400 ms after the first renewal: only the second one keeps it open.
    expect(fence.signal.aborted).toBe(false);
    fence.end('stopping');
    expect(String(fence.signal.reason)).toContain('stopping');
    fence.extend(performance.now() + 10_000);
    expect(fence.signal.aborted).toBe(true);
  });

  it('FenceSlot follows the fence set later; NO_FENCE never aborts', () => {
    const slot = new FenceSlot();
    expect(slot.signal).toBe(NO_FENCE.signal);
    const fence = new DeadlineFence();
    slot.set(fence);
    expect(slot.signal.aborted).toBe(false);
    fence.end('over');
    expect(slot.signal.aborted).toBe(true);
    expect(NO_FENCE.signal.aborted).toBe(false);
  });
});
