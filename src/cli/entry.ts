#!/usr/bin/env node
// The executable (package.json "bin", the image's entrypoint). ESM imports are hoisted and evaluated
// before any code of the importing module runs, so the Node.js version check lives here, in front of
// a dynamic import: main.js and everything it loads (undici, Node 24 APIs) only load on a supported Node.
import { EXIT_UNSUPPORTED_NODE, nodeVersionProblem } from './node-version.js';

const problem = nodeVersionProblem(process.versions.node);
if (problem) {
  process.stderr.write(problem);
  process.exitCode = EXIT_UNSUPPORTED_NODE;
} else {
  await import('./main.js');
}
