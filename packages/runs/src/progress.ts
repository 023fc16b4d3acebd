/**
 * What a run reports while it works. The CLI implements it with its progress line (stderr); a script
 * passes its own, or nothing (`silentProgress`).
 */
export interface RunProgress {
  /** Called for every step of long work: `done` of `total`, with a short detail (loss, rate, …). */
  update(done: number, total: number, detail?: string): void;
  /** Called with a line worth keeping: a stage starting, a resume, a note from the trainer. */
  log(message: string): void;
}

/** Reports nothing. */
export const silentProgress: RunProgress = {
  update: () => {},
  log: () => {},
};

/** A run that stopped on its abort signal (after saving a checkpoint); rerun with resume to continue. */
export class RunInterrupted extends Error {
  constructor(what: string) {
    super(`interrupted while ${what}; rerun to resume`);
    this.name = 'RunInterrupted';
  }
}
