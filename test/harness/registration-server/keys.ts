// Signing keys for the provider. Passing our own JWKS keeps node-oidc-provider from falling back to
// its published development keys (and from printing a warning about them).
import { generateKeyPair } from 'node:crypto';
import { promisify } from 'node:util';

const generate = promisify(generateKeyPair);

// RSA key generation costs tens of milliseconds; one key per process is plenty for tests.
let cached: Promise<Record<string, unknown>> | undefined;

async function makeSigningJwk(): Promise<Record<string, unknown>> {
  const { privateKey } = await generate('rsa', { modulusLength: 2048 });
  // RS256 because that is what INDIGO IAM signs ID tokens with and the provider's client default.
  return {
    ...privateKey.export({ format: 'jwk' }),
    kid: `test-${Date.now().toString(36)}`,
    alg: 'RS256',
    use: 'sig',
  };
}

export async function signingJwks(): Promise<{ keys: Record<string, unknown>[] }> {
  cached ??= makeSigningJwk();
  return { keys: [await cached] };
}
