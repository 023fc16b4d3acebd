// Debian's chromium driven by playwright-core (its own browser downloads fail offline), for the e2e tests
// that open report.html from disk. .ci/run installs the package when it is absent.
import { type Browser, chromium } from 'playwright-core';

/** The browser binary: QUORUM_CHROMIUM, else Debian's. */
export const CHROMIUM = process.env.QUORUM_CHROMIUM ?? '/usr/bin/chromium';

/** Launches headless Chromium with no sandbox, GPU or background network traffic. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
