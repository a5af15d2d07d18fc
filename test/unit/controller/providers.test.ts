import { describe, expect, it } from 'vitest';
import { isStaleTrust } from '../../../src/controller/providers.js';
import {
  ClientNotFoundError,
  InvalidClientMetadataError,
  ProviderUnavailableError,
  RegistrationUnauthorizedError,
  TokenRejectedError,
} from '../../../src/registration/errors.js';

describe('isStaleTrust: which failures drop the cached provider client and re-read its Secrets', () => {
  it('a certificate that does not verify, or a refused initial access token', () => {
    for (const code of ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'CERT_HAS_EXPIRED']) {
      expect(isStaleTrust(new ProviderUnavailableError('tls', { code })), code).toBe(true);
    }
    expect(isStaleTrust(new RegistrationUnauthorizedError('401', 401))).toBe(true);
  });

  it("not outages, a rejected registration access token (the client's own) or metadata errors", () => {
    expect(isStaleTrust(new ProviderUnavailableError('down', { code: 'ECONNREFUSED' }))).toBe(false);
    expect(isStaleTrust(new ProviderUnavailableError('503', { status: 503 }))).toBe(false);
    expect(isStaleTrust(new TokenRejectedError('401', 401))).toBe(false);
    expect(isStaleTrust(new ClientNotFoundError('404', 404))).toBe(false);
    expect(isStaleTrust(new InvalidClientMetadataError('invalid_redirect_uri'))).toBe(false);
    expect(isStaleTrust(new Error('x'))).toBe(false);
  });
});
