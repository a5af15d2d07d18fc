// A real RFC 7591/7592 registration server for tests and the demo: node-oidc-provider configured
// like INDIGO IAM, plus fault injection, request recording and direct access to its client store.
//
// What node-oidc-provider 9 requires from an RFC 7592 client (the operator must respect these):
// - PUT replaces the whole registration: send the full metadata. The body MUST contain `client_id`
//   equal to the path's client id (else 400 invalid_request). `client_secret` may be omitted; when
//   present it must equal the current secret (else 400 invalid_request). The body MUST NOT contain
//   registration_access_token, registration_client_uri, client_secret_expires_at or
//   client_id_issued_at (400 invalid_request "request MUST NOT include the … field").
//   Fields left out fall back to the defaults (see clientDefaults); null or '' values are dropped.
// - GET answers 200 with the stored metadata including client_secret, client_secret_expires_at (0),
//   client_id_issued_at, the RAT that was used and registration_client_uri.
// - Unknown metadata fields are dropped silently; bad values answer 400 with `error`
//   invalid_redirect_uri (description starts with "redirect_uris") or invalid_client_metadata.
// - A wrong or revoked RAT, or a deleted client, answers 401 invalid_token.
import { createServer as createHttpServer, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { Provider } from 'oidc-provider';
import { DialectRequests, dialectAnswers, resolveDialect } from './dialect.js';
import { FaultInjector } from './faults.js';
import { signingJwks } from './keys.js';
import { MemoryStore } from './memory-store.js';
import {
  buildConfiguration,
  rotateOnRead,
  stripManagementCredentials,
  stripRegistrationEndpoint,
} from './provider-config.js';
import { makeTlsMaterial } from './tls.js';
import type { RegistrationServer, RegistrationServerOptions } from './types.js';

export { REGISTRATION_PATH } from './provider-config.js';
export type * from './types.js';

export async function startRegistrationServer(
  opts: RegistrationServerOptions = {},
): Promise<RegistrationServer> {
  const dialect = resolveDialect(opts.dialect, opts.mode ?? 'iam');
  const mode = opts.mode ?? (dialect.ratRotation === 'every-call' ? 'rotating' : 'iam');
  const { basePath, registrationPath, tokenPath } = dialect;
  const [jwks, tls] = await Promise.all([
    signingJwks(),
    typeof opts.tls === 'object' ? opts.tls : opts.tls ? makeTlsMaterial() : undefined,
  ]);
  const store = new MemoryStore();
  const faults = new FaultInjector(`${basePath}${registrationPath}`);

  // The issuer contains the port, which is only known after listen(); until the provider exists
  // (a few milliseconds) requests get 503.
  let handler: RequestListener = (_req, res) => {
    res.writeHead(503).end();
  };
  const listener = faults.wrap(new DialectRequests(dialect).wrap((req, res) => handler(req, res)));
  const server: Server = tls
    ? createHttpsServer({ key: tls.keyPem, cert: tls.certPem }, listener)
    : createHttpServer(listener);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });

  const { port } = server.address() as AddressInfo;
  const issuer = `${tls ? 'https' : 'http'}://127.0.0.1:${port}${basePath}`;
  const provider = new Provider(
    issuer,
    buildConfiguration({
      rotation: dialect.ratRotation,
      registrationPath,
      tokenPath,
      initialAccessToken: opts.initialAccessToken,
      adapter: store.adapterFor,
      jwks,
    }),
  );
  // Koa would print unexpected errors to stderr; set DEBUG=oidc-provider:* to see them instead.
  provider.silent = true;
  // Outermost first: the dialect rewrites what the middlewares below have produced.
  provider.use(dialectAnswers(dialect, (clientId) => store.getClient(clientId) !== undefined));
  if (opts.advertiseRegistrationEndpoint === false) provider.use(stripRegistrationEndpoint());
  if (dialect.ratRotation === 'every-call') provider.use(rotateOnRead(provider, registrationPath));
  if (opts.omitManagementCredentials) provider.use(stripManagementCredentials(registrationPath));
  handler = provider.callback();

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve, reject) => {
      faults.abortPending();
      server.close((err) => (err ? reject(err) : resolve()));
      // The operator's undici pool keeps sockets alive; without this close() waits for their timeout.
      server.closeAllConnections();
    });
    return closing;
  };

  return {
    issuer,
    registrationEndpoint: `${issuer}${registrationPath}`,
    tokenEndpoint: `${issuer}${tokenPath}`,
    ...(tls ? { caPem: tls.caPem, tlsMaterial: tls } : {}),
    mode,
    dialect,
    requests: faults.requests,
    faults: { add: (rule) => faults.add(rule), clear: () => faults.clear() },
    store: {
      list: async () => store.listClients(),
      get: async (clientId) => store.getClient(clientId),
      update: async (clientId, patch) => store.updateClient(clientId, patch),
      delete: async (clientId) => store.deleteClient(clientId),
      revokeRegistrationAccessToken: async (clientId) => store.revokeRegistrationAccessTokens(clientId),
      issueRegistrationAccessToken: async (clientId) => {
        if (!(await store.getClient(clientId))) throw new Error(`unknown client ${clientId}`);
        return new provider.RegistrationAccessToken({ clientId }).save();
      },
    },
    close,
  };
}
