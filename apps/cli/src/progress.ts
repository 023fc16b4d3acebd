/**
 * Progress on stderr for long work: a redrawn line on a terminal, a line every few seconds otherwise
 * (CI logs, pipes). Quiet with QUORUM_QUIET=1. It is the CLI's `RunProgress` (@quorum/runs).
 */
import type { RunProgress } from '@quorum/runs';

export interface ProgressLine extends RunProgress {
  /** Called for every update; cheap when nothing is printed. */
  update(done: number, total: number, detail?: string): void;
  /** Prints a permanent line (and ends the redrawn one). */
  log(message: string): void;
  done(message?: string): void;
}

function bar(fraction: number, width = 24): string {
  const filled = Math.round(Math.max(0, Math.min(1, fraction)) * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
}

function eta(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  if (seconds < 60) return `${Math.round(seconds)}s`;
  return `${Math.floor(seconds / 60)}m${String(Math.round(seconds % 60)).padStart(2, '0')}s`;
}

export interface ProgressLineOptions {
  /** Print every update as a permanent line (for slow steps worth a record each, e.g. PPO's). */
  readonly everyUpdate?: boolean | undefined;
  readonly stream?: NodeJS.WriteStream | undefined;
}

export function progressLine(label: string, options: ProgressLineOptions = {}): ProgressLine {
  const stream = options.stream ?? process.stderr;
  const quiet = process.env.QUORUM_QUIET === '1';
  const tty = stream.isTTY === true && options.everyUpdate !== true;
  const everyUpdate = options.everyUpdate === true;
  let start = Date.now();
  let lastDone = 0;
  let lastPrint = 0;
  let open = false;
  const write = (text: string): void => {
    if (!quiet) stream.write(text);
  };
  return {
    update(done, total, detail) {
      const now = Date.now();
      // A new stage counts from 0 again: measure its rate from its own start, not the line's.
      if (done < lastDone) start = now;
      lastDone = done;
      if (!tty && !everyUpdate && now - lastPrint < 5000 && done < total) return;
      if (tty && now - lastPrint < 100 && done < total) return;
      lastPrint = now;
      const elapsed = Math.max((now - start) / 1000, 1e-3);
      const rate = done / Math.max(elapsed, 1e-3);
      const text = `${label} ${bar(done / Math.max(total, 1))} ${done}/${total} eta ${eta((total - done) / rate)}${detail === undefined ? '' : `  ${detail}`}`;
      if (tty) {
        write(`\r\x1b[2K${text}`);
        open = true;
      } else write(`${text}\n`);
    },
    log(message) {
      if (open) write('\n');
      open = false;
      write(`${message}\n`);
    },
    done(message) {
      if (open) write('\n');
      open = false;
      if (message !== undefined) write(`${message}\n`);
    },
  };
}
