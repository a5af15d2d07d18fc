import { describe, expect, it } from 'vitest';
import { runWorkers, WorkQueue } from '../../../src/kube/workqueue.js';

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

describe('WorkQueue', () => {
  it('stores a waiting key once however often it is added', async () => {
    const q = new WorkQueue();
    q.add('a');
    q.add('a');
    q.add('b');
    q.add('a');
    expect(q.length).toBe(2);
    expect(await q.get()).toBe('a');
    expect(await q.get()).toBe('b');
  });

  it('never hands a key in progress to a second worker; a re-add during processing runs after', async () => {
    const q = new WorkQueue();
    q.add('k');
    const first = await q.get();
    q.add('k'); // while "k" is processed
    expect(q.length).toBe(0);
    q.done(first as string);
    expect(q.length).toBe(1);
    expect(await q.get()).toBe('k');
  });

  it('backs off exponentially per key and resets on forget', () => {
    const q = new WorkQueue({ baseDelayMs: 100, maxDelayMs: 1_000 });
    const delays = [1, 2, 3, 4, 5, 6].map(() => q.addRateLimited('x'));
    expect(delays[0]).toBeGreaterThanOrEqual(75);
    expect(delays[0]).toBeLessThanOrEqual(125);
    expect(delays[2]).toBeGreaterThanOrEqual(300);
    expect(delays[5]).toBeLessThanOrEqual(1_250);
    expect(q.failuresOf('x')).toBe(6);
    q.forget('x');
    expect(q.failuresOf('x')).toBe(0);
    expect(q.addRateLimited('x', 5_000)).toBeGreaterThanOrEqual(5_000);
    q.shutDown();
  });

  it('addAfter keeps the earliest schedule', async () => {
    const q = new WorkQueue();
    q.addAfter('k', 10_000);
    q.addAfter('k', 20);
    await tick(60);
    expect(q.length).toBe(1);
    q.shutDown();
  });

  it('runs keys concurrently up to the worker count and drains on shutdown', async () => {
    const q = new WorkQueue();
    let inFlight = 0;
    let peak = 0;
    const seen: string[] = [];
    const done = runWorkers(
      q,
      3,
      async (key) => {
        inFlight++;
        peak = Math.max(peak, inFlight);
        await tick(20);
        seen.push(key);
        inFlight--;
        return undefined;
      },
      () => undefined,
    );
    for (let i = 0; i < 9; i++) q.add(`k${i}`);
    await tick(150);
    q.shutDown();
    await done;
    expect(peak).toBe(3);
    expect(seen.sort()).toEqual(Array.from({ length: 9 }, (_, i) => `k${i}`).sort());
  });

  it('requeues a failed key with backoff and the hinted minimum delay', async () => {
    const q = new WorkQueue({ baseDelayMs: 10 });
    let calls = 0;
    const done = runWorkers(
      q,
      1,
      async () => {
        calls++;
        if (calls < 3) throw new Error('boom');
        return undefined;
      },
      () => ({ afterMs: 5 }),
    );
    q.add('k');
    await tick(200);
    q.shutDown();
    await done;
    expect(calls).toBe(3);
  });
});

describe('WorkQueue parked keys', () => {
  it('keeps the failure count (and so the backoff) of a key that was parked, not reconciled', async () => {
    const q = new WorkQueue({ baseDelayMs: 1 });
    const outcomes: ('fail' | 'park')[] = ['fail', 'fail', 'park', 'fail'];
    const failuresSeen: number[] = [];
    const done = runWorkers(
      q,
      1,
      async (key) => {
        failuresSeen.push(q.failuresOf(key));
        const next = outcomes.shift();
        if (next === 'fail') throw new Error('provider down');
        if (next === 'park') {
          q.add(key); // woken again at once, as a freed slot would
          return { parked: true };
        }
        return undefined;
      },
      () => undefined,
    );
    q.add('k');
    await tick(100);
    q.shutDown();
    await done;
    // Two failures, a parking that changes nothing, then the fourth attempt still sees both failures.
    expect(failuresSeen.slice(0, 4)).toEqual([0, 1, 2, 2]);
    expect(q.failuresOf('k')).toBe(0);
  });
});

describe('WorkQueue deadline', () => {
  it('never schedules a retry later than the caller allows', () => {
    const q = new WorkQueue({ baseDelayMs: 1_000, maxDelayMs: 300_000 });
    for (let i = 0; i < 10; i++) q.addRateLimited('d');
    expect(q.addRateLimited('d', 0, 2_500)).toBeLessThanOrEqual(2_500);
    expect(q.addRateLimited('d', 5_000, 2_500)).toBe(2_500);
    q.shutDown();
  });
});

describe('runWorkers and I/O', () => {
  it('lets timers and sockets run between reconciles that never wait for I/O', async () => {
    const q = new WorkQueue();
    let done = 0;
    let doneWhenTimerFired = -1;
    const workers = runWorkers(
      q,
      2,
      async () => {
        done++;
        return undefined;
      },
      () => undefined,
    );
    setTimeout(() => {
      doneWhenTimerFired = done;
    }, 0);
    for (let i = 0; i < 5_000; i++) q.add(`k${i}`);
    await tick(200);
    q.shutDown();
    await workers;
    expect(done).toBe(5_000);
    // The timer fired while keys were still being worked through, not after all 5,000.
    expect(doneWhenTimerFired).toBeGreaterThanOrEqual(0);
    expect(doneWhenTimerFired).toBeLessThan(5_000);
  });
});
