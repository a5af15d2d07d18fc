import { describe, expect, it } from 'vitest';
import { OwnWrites, objectId, writeTarget } from '../../../src/kube/own-writes.js';

const RES = new Set(['secrets', 'oidcclients']);
const tick = () => new Promise((r) => setTimeout(r, 0));

describe('writeTarget', () => {
  it('names the object of create, replace, patch and delete paths', () => {
    expect(writeTarget('/api/v1/namespaces/ns/secrets', { metadata: { name: 'a' } }, RES)).toBe(
      'secrets/ns/a',
    );
    expect(writeTarget('/api/v1/namespaces/ns/secrets/a', {}, RES)).toBe('secrets/ns/a');
    expect(
      writeTarget('/apis/oidc.dcr-operator.dev/v1alpha1/namespaces/ns/oidcclients/c/status', {}, RES),
    ).toBe('oidcclients/ns/c');
    expect(writeTarget('/api/v1/namespaces/ns/events', { metadata: { name: 'e' } }, RES)).toBeUndefined();
    expect(writeTarget('/api/v1/namespaces/ns', {}, RES)).toBeUndefined();
  });
});

describe('OwnWrites', () => {
  it('ignores exactly the event carrying a version we produced, once', () => {
    const w = new OwnWrites();
    const id = objectId('secrets', 'ns', 'a');
    w.begin(id);
    w.end(id, '10');
    let woken = 0;
    w.judge(id, '10', () => woken++);
    expect(woken).toBe(0);
    w.judge(id, '10', () => woken++); // a second event with the same version is not ours to swallow
    w.judge(id, '11', () => woken++); // someone else's edit
    expect(woken).toBe(2);
    expect(w.ignored).toBe(1);
  });

  it('holds an event that arrives while our write is in flight until the write settles', async () => {
    const w = new OwnWrites();
    const id = objectId('secrets', 'ns', 'a');
    w.begin(id);
    let woken = 0;
    w.judge(id, '12', () => woken++); // the watch was faster than our HTTP response
    await tick();
    expect(woken).toBe(0);
    w.end(id, '12');
    await tick();
    expect(woken).toBe(0);
    expect(w.ignored).toBe(1);
    // A failed write records nothing; the held event then wakes.
    w.begin(id);
    w.judge(id, '13', () => woken++);
    w.end(id, undefined);
    await tick();
    expect(woken).toBe(1);
  });

  it('bounds its memory: entries expire and the oldest go beyond the cap', () => {
    const w = new OwnWrites({ maxEntries: 3, ttlMs: 60_000 });
    for (let i = 0; i < 10; i++) {
      const id = objectId('secrets', 'ns', `s${i}`);
      w.begin(id);
      w.end(id, String(i));
    }
    expect(w.size).toBe(3);
    let woken = 0;
    w.judge(objectId('secrets', 'ns', 's0'), '0', () => woken++);
    expect(woken).toBe(1);
    const expired = new OwnWrites({ ttlMs: -1 });
    const id = objectId('secrets', 'ns', 'x');
    expired.begin(id);
    expired.end(id, '1');
    expired.judge(id, '1', () => woken++);
    expect(woken).toBe(2);
  });
});
