// What the browser tests (login.mjs, spa.mjs) share: Debian's Chromium launched headless with
// the flags this machine needs (never a downloaded browser), a fresh context, a watchdog, and the
// small helpers for checks, messages and screenshots.

import { chromium } from 'playwright-core';

export const STEP_TIMEOUT_MS = 15_000;
export const WHOLE_RUN_TIMEOUT_MS = 120_000;
export const CHROMIUM = process.env.LOGINWITH_CHROMIUM || '/usr/bin/chromium';
export const PHONE = { width: 375, height: 740 };

export class Failure extends Error {}

export function check(condition, message) {
  if (!condition) throw new Failure(message);
}

export function log(message) {
  console.log(`browser: ${message}`);
}

// Ends the process if the whole run takes too long, so that nothing can wait forever; returns the
// timer, for clearTimeout once the run is over.
export function startWatchdog() {
  const watchdog = setTimeout(() => {
    console.error(`browser test FAILED: the whole run took more than ${WHOLE_RUN_TIMEOUT_MS / 1000} s`);
    process.exit(1);
  }, WHOLE_RUN_TIMEOUT_MS);
  watchdog.unref();
  return watchdog;
}

// Debian's Chromium, headless. Without the background-networking flags it tries Google's hosts,
// which this machine's closed network refuses.
export async function launchChromium() {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: STEP_TIMEOUT_MS * 2,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  log(`launched ${CHROMIUM} (Chromium ${browser.version()})`);
  return browser;
}

// A fresh context (a fresh profile: no cookies, no cache) with the step timeouts.
export async function freshContext(browser) {
  const context = await browser.newContext({ viewport: { width: 1024, height: 768 } });
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  context.setDefaultNavigationTimeout(STEP_TIMEOUT_MS);
  return context;
}

// Clicks `button` and returns the answer to the POST to `path` that it sends.
export async function clickForPost(page, button, path) {
  const [answer] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === path),
    button.click(),
  ]);
  return answer;
}

// The visible text of a page, on one line, for messages.
export async function pageText(page) {
  try {
    const text = await page.locator('body').innerText({ timeout: 2_000 });
    return text.slice(0, 1500).replace(/\s*\n+\s*/g, ' | ');
  } catch {
    return '(page text unavailable)';
  }
}

// shot.png -> shot-NAME.png, for the other pages' screenshots.
export function shotPath(path, name) {
  return /\.png$/i.test(path) ? path.replace(/\.png$/i, `-${name}.png`) : `${path}-${name}.png`;
}

// The requests (URLs) that went anywhere but `baseUrl`'s host: the pages must be self-contained
// (no CDN; they work offline). data:, blob: and about: URLs stay in the browser.
export function foreignRequests(requests, baseUrl) {
  return requests.filter((u) => {
    let url;
    try {
      url = new URL(u);
    } catch {
      return true;
    }
    if (url.protocol === 'data:' || url.protocol === 'blob:' || url.protocol === 'about:') return false;
    return url.host !== baseUrl.host;
  });
}
