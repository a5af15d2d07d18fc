// Runs the INDIGO IAM-like registration server (node-oidc-provider) for the demo and for users
// trying the operator locally: `npm run provider -- --port 9080 --mode rotating --tls`.
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DIALECT_PRESETS } from '../test/harness/registration-server/dialects.js';
import {
  type RatMode,
  type RegistrationServerOptions,
  startRegistrationServer,
} from '../test/harness/registration-server/index.js';

const USAGE = `usage: npm run provider -- [--port 9080] [--mode iam|rotating] [--dialect ID] [--initial-access-token X] [--tls] [--ca-out FILE]
dialects (another server's behaviour, see README "Compatibility"): ${DIALECT_PRESETS.map((d) => d.id).join(', ')}`;

function parseDialect(value: string | undefined): RegistrationServerOptions {
  if (value === undefined) return {};
  const preset = DIALECT_PRESETS.find((d) => d.id === value);
  if (!preset) throw new Error(`--dialect must be one of ${DIALECT_PRESETS.map((d) => d.id).join(', ')}`);
  return preset.options;
}

function parseMode(value: string | undefined): RatMode {
  if (value === undefined || value === 'iam' || value === 'rotating') return value ?? 'iam';
  throw new Error(`--mode must be iam or rotating, not ${value}`);
}

function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`--port must be 0..65535, not ${value}`);
  return port;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '9080' },
      mode: { type: 'string' },
      dialect: { type: 'string' },
      'initial-access-token': { type: 'string' },
      tls: { type: 'boolean', default: false },
      'ca-out': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }

  const dialect = parseDialect(values.dialect);
  const server = await startRegistrationServer({
    ...dialect,
    port: parsePort(values.port),
    ...(values.mode !== undefined ? { mode: parseMode(values.mode) } : {}),
    initialAccessToken: values['initial-access-token'] ?? dialect.initialAccessToken,
    tls: values.tls,
  });

  console.log(`issuer:                ${server.issuer}`);
  console.log(`registration endpoint: ${server.registrationEndpoint}`);
  console.log(`token endpoint:        ${server.tokenEndpoint}`);
  console.log(`mode:                  ${server.mode} (token rotation: ${server.dialect.ratRotation})`);
  if (values.dialect) console.log(`dialect:               ${values.dialect}`);
  if (values['initial-access-token']) console.log('initial access token:  required on registration');
  else if (dialect.initialAccessToken) console.log(`initial access token:  ${dialect.initialAccessToken}`);
  if (server.caPem) {
    // The CA is new on every start; clients must trust this file (e.g. NODE_EXTRA_CA_CERTS, curl --cacert).
    const caFile = values['ca-out'] ?? join(tmpdir(), 'registration-server-ca.pem');
    await writeFile(caFile, server.caPem);
    console.log(`CA certificate:        ${caFile}`);
  }

  const stop = (signal: NodeJS.Signals): void => {
    console.log(`${signal}: stopping`);
    server.close().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(err);
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  console.error(USAGE);
  process.exit(2);
});
