// Where a registration access token may go: origin parsing and the management URL check.
import { describe, expect, it } from 'vitest';
import { ClientMismatchError, ForeignEndpointError } from '../../../src/registration/errors.js';
import { ManagementOrigins, OriginConfigError, parseOrigin } from '../../../src/registration/origins.js';

const REG = 'https://iam.example.org/iam/api/client-registration';

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  return undefined;
}

describe('parseOrigin', () => {
  it('accepts scheme://host[:port] with an optional trailing slash, normalised', () => {
    expect(parseOrigin('https://IAM-admin.example.org:8443')).toBe('https://iam-admin.example.org:8443');
    expect(parseOrigin('https://iam.example.org:443/')).toBe('https://iam.example.org');
    expect(parseOrigin('http://127.0.0.1:8080')).toBe('http://127.0.0.1:8080');
  });

  it.each([
    'https://iam.example.org/iam',
    'https://iam.example.org/?a=b',
    'https://user:pw@iam.example.org',
    'ftp://iam.example.org',
    'iam.example.org',
    'https://iam.example.org#x',
  ])('refuses %s', (value) => {
    expect(thrown(() => parseOrigin(value))).toBeInstanceOf(OriginConfigError);
  });
});

describe('ManagementOrigins', () => {
  it("allows the registration endpoint's origin and the listed ones, nothing else", () => {
    const o = new ManagementOrigins(REG, ['https://iam-admin.example.org:8443']);
    expect(o.origins).toEqual(['https://iam.example.org', 'https://iam-admin.example.org:8443']);
    expect(o.managementUrl(`${REG}/abc`, 'abc').href).toBe(`${REG}/abc`);
    expect(o.managementUrl('https://iam-admin.example.org:8443/manage/abc', 'abc').pathname).toBe(
      '/manage/abc',
    );
    for (const foreign of [
      'https://evil.example.net/iam/api/client-registration/abc',
      'http://iam.example.org/iam/api/client-registration/abc', // scheme is part of the origin
      'https://iam.example.org:8443/iam/api/client-registration/abc', // so is the port
      'https://iam.example.org.evil.example.net/abc',
      'https://user:pw@iam.example.org/iam/api/client-registration/abc',
    ]) {
      const error = thrown(() => o.managementUrl(foreign, 'abc'));
      expect(error, foreign).toBeInstanceOf(ForeignEndpointError);
      expect((error as ForeignEndpointError).message).toContain('managementOrigins');
      expect((error as ForeignEndpointError).message).not.toContain('/iam/api');
      expect(o.allows(foreign)).toBe(false);
    }
  });

  it('refuses an http origin next to an https registration endpoint', () => {
    expect(thrown(() => new ManagementOrigins(REG, ['http://iam-admin.example.org']))).toBeInstanceOf(
      OriginConfigError,
    );
    expect(new ManagementOrigins('http://iam.local/reg', ['http://other.local']).origins).toHaveLength(2);
  });

  it('detects a URI under the registration endpoint that names another client', () => {
    const o = new ManagementOrigins(REG);
    const error = thrown(() => o.managementUrl(`${REG}/victim`, 'mine'));
    expect(error).toBeInstanceOf(ClientMismatchError);
    expect((error as Error).message).toContain('victim');
    // Encoded ids compare decoded; layouts other than <endpoint>/<id> are left to the answer check.
    expect(o.managementUrl(`${REG}/a%20b`, 'a b').pathname).toBe('/iam/api/client-registration/a%20b');
    expect(o.managementUrl('https://iam.example.org/manage?id=x', 'mine').search).toBe('?id=x');
  });

  it('trusts only the listed origins when the registration endpoint is unknown', () => {
    const o = new ManagementOrigins('', ['https://iam.example.org']);
    expect(o.allows(`${REG}/abc`)).toBe(true);
    expect(new ManagementOrigins('').origins).toEqual([]);
    expect(thrown(() => new ManagementOrigins('').managementUrl(`${REG}/abc`, 'abc'))).toBeInstanceOf(
      ForeignEndpointError,
    );
  });
});
