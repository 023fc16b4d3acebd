/** Ctrl-C (SIGINT) and SIGTERM stop long work cleanly: the first one asks the run to save and stop, the second exits. */
export function interruptSignal(
  onFirst: (name: string) => void = (n) =>
    process.stderr.write(
      `\nquorum: ${n} received: saving a checkpoint and stopping (press again to quit now)\n`,
    ),
): AbortSignal {
  const controller = new AbortController();
  const handler = (name: NodeJS.Signals): void => {
    if (controller.signal.aborted) process.exit(130);
    onFirst(name);
    controller.abort();
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return controller.signal;
}
