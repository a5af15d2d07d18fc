import { describe, expect, it } from 'vitest';
import { Semaphore } from '../../../src/registration/semaphore.js';

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('Semaphore', () => {
  it('admits up to the limit and queues the rest', async () => {
    const semaphore = new Semaphore(2);
    const first = await semaphore.acquire();
    await semaphore.acquire();
    let thirdIn = false;
    const third = semaphore.acquire().then((release) => {
      thirdIn = true;
      return release;
    });
    await tick();
    expect(semaphore.active).toBe(2);
    expect(semaphore.waiting).toBe(1);
    expect(thirdIn).toBe(false);
    first();
    (await third)();
    expect(thirdIn).toBe(true);
  });

  it('serves waiters in FIFO order', async () => {
    const semaphore = new Semaphore(1);
    const release = await semaphore.acquire();
    const order: number[] = [];
    const waiters = [1, 2, 3, 4].map((n) =>
      semaphore.acquire().then((done) => {
        order.push(n);
        done();
      }),
    );
    await tick();
    release();
    await Promise.all(waiters);
    expect(order).toEqual([1, 2, 3, 4]);
    expect(semaphore.active).toBe(0);
  });

  it('never exceeds the limit under load and ignores double release', async () => {
    const semaphore = new Semaphore(3);
    let inFlight = 0;
    let peak = 0;
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        semaphore.run(async () => {
          inFlight++;
          peak = Math.max(peak, inFlight);
          await new Promise((resolve) => setTimeout(resolve, i % 3));
          inFlight--;
        }),
      ),
    );
    expect(peak).toBe(3);
    const release = await semaphore.acquire();
    release();
    release();
    expect(semaphore.active).toBe(0);
  });

  it('releases the slot when the task throws', async () => {
    const semaphore = new Semaphore(1);
    await expect(semaphore.run(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(semaphore.active).toBe(0);
    await expect(semaphore.run(async () => 'ok')).resolves.toBe('ok');
  });

  it('rejects a limit below 1', () => {
    expect(() => new Semaphore(0)).toThrow(RangeError);
    expect(() => new Semaphore(1.5)).toThrow(RangeError);
  });
});
