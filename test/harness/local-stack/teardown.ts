// Runs a script's main function so that whatever it started is torn down on success, on failure
// and on Ctrl-C, and the exit code says which one happened.
//
// The managed processes (control plane, operator) live in their own process groups: Ctrl-C does not
// reach them, and processes.ts kills them (and removes their temp dirs) when this process gets a
// termination signal. The steps registered here add the orderly part: graceful stops in reverse
// start order, closing in-process servers, and messages.

export type Signal = 'SIGINT' | 'SIGTERM' | 'SIGHUP';
const SIGNALS: readonly Signal[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
const EXIT_FOR: Record<Signal, number> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };

export class Teardown {
  readonly #steps: { name: string; fn: () => Promise<void> }[] = [];
  #running: Promise<void> | undefined;
  #expectSignal = false;
  readonly #signal = Promise.withResolvers<Signal>();

  constructor(private readonly log: (line: string) => void) {}

  /** Registers a cleanup; they run last-in first-out, each at most once, failures reported. */
  add(name: string, fn: () => Promise<void>): void {
    this.#steps.push({ name, fn });
  }

  /** For a "keep running until Ctrl-C" phase: the signal then ends main() normally. */
  untilInterrupted(): Promise<Signal> {
    this.#expectSignal = true;
    return this.#signal.promise;
  }

  /** @internal */
  interrupt(signal: Signal): boolean {
    this.#signal.resolve(signal);
    return this.#expectSignal;
  }

  run(): Promise<void> {
    this.#running ??= (async () => {
      for (const step of this.#steps.reverse()) {
        try {
          await step.fn();
        } catch (error) {
          this.log(
            `teardown: ${step.name} failed: ${error instanceof Error ? error.message : String(error)}`,
          );
        }
      }
    })();
    return this.#running;
  }
}

/**
 * Calls main, then tears down and exits: 0 on success, 1 on error (message on stderr), 128+n on an
 * unexpected signal. A second signal during teardown exits at once (processes.ts has already killed
 * the process groups by then).
 */
export async function runWithTeardown(
  name: string,
  main: (teardown: Teardown) => Promise<void>,
  log: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): Promise<never> {
  const teardown = new Teardown(log);
  let signalled: Signal | undefined;
  for (const signal of SIGNALS) {
    // Installed before anything starts, so it runs before processes.ts's own (hard-kill) handler.
    process.on(signal, () => {
      if (signalled) process.exit(EXIT_FOR[signal]);
      signalled = signal;
      if (teardown.interrupt(signal)) return;
      log(`\n${name}: ${signal} received, tearing down`);
      void teardown.run().then(() => process.exit(EXIT_FOR[signal]));
    });
  }
  let code = 0;
  try {
    await main(teardown);
  } catch (error) {
    code = 1;
    if (!signalled) log(`\n${name} FAILED: ${error instanceof Error ? error.message : String(error)}`);
  }
  await teardown.run();
  process.exit(signalled && code !== 0 ? EXIT_FOR[signalled] : code);
}
