// Where a registration access token may go. RFC 7592 calls use the registration_client_uri, which
// comes from places a tenant can edit (the management Secret, an adoption Secret) or from a provider
// answer. Sending the token anywhere else than the provider would hand it (and the power to change
// or delete the client) to whoever runs that host, so every management URL is checked against the
// provider's origins before anything is sent.
import { ClientMismatchError, ForeignEndpointError, UnexpectedResponseError } from './errors.js';

/** A provider's management origins are misconfigured (the provider resource needs a fix). */
export class OriginConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OriginConfigError';
  }
}

/**
 * A configured origin: scheme://host[:port] with an optional trailing slash and nothing else.
 * Returns the normalised form (lower-case host, default port dropped), as URL.origin spells it.
 */
export function parseOrigin(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new OriginConfigError(`"${value}" is not an origin (expected scheme://host[:port])`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new OriginConfigError(`"${value}" must use http or https`);
  }
  if (url.username || url.password || url.pathname !== '/' || url.search || url.hash) {
    throw new OriginConfigError(
      `"${value}" must be an origin only: scheme://host[:port], no path, query or user`,
    );
  }
  return url.origin;
}

export class ManagementOrigins {
  readonly #origins: ReadonlySet<string>;
  readonly #registration: URL | undefined;

  /**
   * `registrationEndpoint` ('' when unknown) contributes its own origin; `extra` adds origins the
   * provider's admin listed. With an https registration endpoint no http origin is accepted.
   */
  constructor(registrationEndpoint: string, extra: readonly string[] = []) {
    const origins = new Set<string>();
    if (registrationEndpoint !== '') {
      try {
        this.#registration = new URL(registrationEndpoint);
      } catch {
        throw new OriginConfigError('the registration endpoint is not a URL');
      }
      origins.add(this.#registration.origin);
    }
    for (const value of extra) {
      const origin = parseOrigin(value);
      if (this.#registration?.protocol === 'https:' && origin.startsWith('http:')) {
        throw new OriginConfigError(
          `management origin ${origin} uses http while the registration endpoint uses https; tokens would travel unencrypted`,
        );
      }
      origins.add(origin);
    }
    this.#origins = origins;
  }

  get origins(): string[] {
    return [...this.#origins];
  }

  allows(value: string): boolean {
    try {
      const url = new URL(value);
      return !url.username && !url.password && this.#origins.has(url.origin);
    } catch {
      return false;
    }
  }

  /**
   * The URL to send a management call for `clientId` to. Throws ForeignEndpointError when it is not
   * on a provider origin, and ClientMismatchError when it follows the `<registration endpoint>/<id>`
   * layout (INDIGO IAM, node-oidc-provider, Keycloak, MITREid) but names another client.
   */
  managementUrl(value: string, clientId: string): URL {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw new UnexpectedResponseError('registration_client_uri is not a valid URL');
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new UnexpectedResponseError(
        `registration_client_uri must be an http(s) URL, got ${url.protocol}`,
      );
    }
    if (url.username || url.password || !this.#origins.has(url.origin)) {
      throw new ForeignEndpointError(
        `registration_client_uri points to ${url.origin}, which is not an origin of the provider (${this.describe()}); nothing was sent. If the provider really serves it, add it to spec.managementOrigins of the provider resource`,
        url.origin,
      );
    }
    const named = this.clientIdInPath(url);
    if (named !== undefined && named !== clientId) {
      throw new ClientMismatchError(
        `registration_client_uri names client ${named}, not the stored client ${clientId}; nothing was sent`,
      );
    }
    return url;
  }

  describe(): string {
    return this.#origins.size > 0 ? [...this.#origins].join(', ') : 'none known';
  }

  /** The client id of a URL shaped `<registration endpoint>/<id>`, else undefined. */
  private clientIdInPath(url: URL): string | undefined {
    const reg = this.#registration;
    if (!reg || url.origin !== reg.origin) return undefined;
    const base = reg.pathname.replace(/\/+$/, '');
    if (!url.pathname.startsWith(`${base}/`)) return undefined;
    const rest = url.pathname.slice(base.length + 1);
    if (rest === '' || rest.includes('/')) return undefined;
    try {
      return decodeURIComponent(rest);
    } catch {
      return rest;
    }
  }
}
