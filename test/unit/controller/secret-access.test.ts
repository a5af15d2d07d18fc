import { describe, expect, it } from 'vitest';
import { SecretAccess } from '../../../src/controller/secret-access.js';
import { KubeApiError, type KubeRest } from '../../../src/kube/rest.js';

/** Answers SelfSubjectAccessReviews with `allowed`, counting them. */
function fakeRest(answer: () => boolean | Error) {
  const asked: string[] = [];
  const rest = {
    create: async (_path: string, body: { spec: { resourceAttributes: { namespace: string } } }) => {
      asked.push(body.spec.resourceAttributes.namespace);
      await new Promise((r) => setTimeout(r, 5));
      const a = answer();
      if (a instanceof Error) throw a;
      return { status: { allowed: a } };
    },
  } as unknown as KubeRest;
  return { rest, asked };
}

describe('SecretAccess', () => {
  it('asks once per namespace for a burst of clients', async () => {
    const { rest, asked } = fakeRest(() => true);
    const access = new SecretAccess(rest);
    await Promise.all(Array.from({ length: 20 }, () => access.assertCanCreate('a')));
    await access.assertCanCreate('a');
    await access.assertCanCreate('b');
    expect(asked).toEqual(['a', 'b']);
  });

  it('refuses with a 403 naming the missing grant, and asks again next time', async () => {
    let allowed = false;
    const { rest, asked } = fakeRest(() => allowed);
    const access = new SecretAccess(rest);
    const error = await access.assertCanCreate('a').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KubeApiError);
    expect((error as KubeApiError).status).toBe(403);
    expect((error as Error).message).toMatch(
      /forbidden: cannot create resource "secrets" in the namespace "a"/,
    );
    allowed = true;
    await access.assertCanCreate('a');
    expect(asked).toEqual(['a', 'a']);
  });

  it('does not reuse an answer asked for before the client was created', async () => {
    let allowed = true;
    const { rest, asked } = fakeRest(() => allowed);
    const access = new SecretAccess(rest);
    await access.assertCanCreate('a', Date.now() - 1_000);
    // The grant is revoked; a client created afterwards asks again and is refused.
    allowed = false;
    await new Promise((r) => setTimeout(r, 10));
    const error = await access.assertCanCreate('a', Date.now()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KubeApiError);
    expect(asked).toEqual(['a', 'a']);
  });

  it('lets the create itself tell when access reviews cannot be asked', async () => {
    const { rest } = fakeRest(
      () => new KubeApiError(403, 'Forbidden', 'no reviews', 'POST', '/selfsubjectaccessreviews'),
    );
    await expect(new SecretAccess(rest).assertCanCreate('a')).resolves.toBeUndefined();
  });
});
