// Which Node.js the CLI runs on. Imports nothing and uses nothing newer than Node 12 so that
// entry.ts can load it on any Node and print what is needed instead of a stack trace.

/** The oldest major version the operator supports (package.json "engines"). */
export const REQUIRED_NODE_MAJOR = 24;

/** The message for an unsupported version (`process.versions.node`, e.g. "20.20.2"); undefined if fine. */
export function nodeVersionProblem(version: string): string | undefined {
  const major = Number.parseInt(version.split('.')[0] ?? '', 10);
  if (Number.isInteger(major) && major >= REQUIRED_NODE_MAJOR) return undefined;
  return (
    `oidc-client-operator needs Node.js ${REQUIRED_NODE_MAJOR} or newer; this is Node.js ${version}.\n` +
    `Install Node.js ${REQUIRED_NODE_MAJOR} (e.g. nvm install ${REQUIRED_NODE_MAJOR}), run the container image, ` +
    'or in a checkout run it through npm (npm exec -- node dist/cli/entry.js ...), which uses the ' +
    `Node.js ${REQUIRED_NODE_MAJOR} the project installs as a dev dependency.\n`
  );
}

/** Exit status for an unsupported Node.js: the same as any other failure before work starts. */
export const EXIT_UNSUPPORTED_NODE = 1;
