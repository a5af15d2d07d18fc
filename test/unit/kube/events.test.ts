import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { EventRecorder } from '../../../src/kube/events.js';
import type { KubeRest } from '../../../src/kube/rest.js';

function fakeRest() {
  const calls: { method: string; path: string; body: Record<string, unknown> }[] = [];
  const rest = {
    create: async (path: string, body: Record<string, unknown>) => {
      calls.push({ method: 'POST', path, body });
      return body;
    },
    patch: async (path: string, _type: string, body: Record<string, unknown>) => {
      calls.push({ method: 'PATCH', path, body });
      return body;
    },
  } as unknown as KubeRest;
  return { rest, calls };
}

const obj = { apiVersion: 'v1', kind: 'Thing', metadata: { name: 'a', namespace: 'ns', uid: 'u1' } };
const settle = () => new Promise((r) => setTimeout(r, 5));

describe('EventRecorder', () => {
  it('writes identical events once', async () => {
    const { rest, calls } = fakeRest();
    const rec = new EventRecorder(rest, 'test', pino({ level: 'silent' }));
    for (let i = 0; i < 5; i++) rec.record(obj, 'Normal', 'Registered', 'same');
    await settle();
    expect(calls).toHaveLength(1);
  });

  it('keeps one Event per Warning kind and bumps its count and message', async () => {
    const { rest, calls } = fakeRest();
    const rec = new EventRecorder(rest, 'test', pino({ level: 'silent' }));
    for (let i = 0; i < 4; i++) rec.record(obj, 'Warning', 'RegistrationRetried', `attempt ${i}`);
    rec.record(obj, 'Warning', 'Other', 'x');
    await settle();
    const posts = calls.filter((c) => c.method === 'POST');
    const patches = calls.filter((c) => c.method === 'PATCH');
    expect(posts.map((p) => p.body.reason)).toEqual(['RegistrationRetried', 'Other']);
    expect(patches).toHaveLength(3);
    const name = (posts[0]?.body.metadata as { name: string } | undefined)?.name;
    expect(patches.every((p) => p.path === `/api/v1/namespaces/ns/events/${name}`)).toBe(true);
    expect(patches.at(-1)?.body).toMatchObject({ count: 4, message: 'attempt 3' });
    expect(rec.seriesCount(obj, 'RegistrationRetried')).toBe(4);
  });
});
