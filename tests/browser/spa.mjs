// The single-page app example in a browser: Debian's headless Chromium, driven by playwright-core,
// opens examples/spa's page, sees the providers its script rendered from /auth/api/providers,
// logs in through the development provider and lands back on the page, sees /auth/api/me on it,
// sees an API error shown on the page, logs out with POST /auth/api/logout, and reloads. No script
// error, no CSP violation, no request to another host.
//
//   node tests/browser/spa.mjs http://127.0.0.1:PORT
//
// Started by tests/api/browser.rs against the example's app (loginwith under /auth). Exit 0 on
// success, 1 with a message. LOGINWITH_SCREENSHOT=/path/shot.png saves the logged-in page there,
// and beside it shot-start.png, shot-phone.png and, on failure, shot-failure.png.
// Launches Chromium as tests/browser/login.mjs does; never downloads a browser.

import {
  check,
  clickForPost,
  Failure,
  foreignRequests,
  freshContext,
  launchChromium,
  log,
  pageText,
  PHONE,
  shotPath,
  startWatchdog,
} from './common.mjs';

// What the test makes the API answer once, to see the page show an error's `message`.
const REFUSAL = { error: 'cross_origin', code: 'cross_origin', message: 'Refused by the browser test.' };

// Waits until the element `selector` is visible and its whole text is `text`.
async function waitForText(page, selector, text) {
  const escaped = text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  try {
    await page.locator(selector).filter({ hasText: new RegExp(`^\\s*${escaped}\\s*$`) }).waitFor({ state: 'visible' });
  } catch {
    const shown = await page.locator(selector).first().textContent({ timeout: 1_000 }).catch(() => null);
    throw new Failure(`${selector} should say "${text}"; it says ${shown === null ? 'nothing (not there)' : `"${shown.trim()}"`}`);
  }
}

// A console error that the page is expected to cause: the browser logs every failed answer to a
// fetch(), such as /auth/api/me's 401 when nobody is logged in and the refusal the test makes up.
function expectedConsoleError(message) {
  const path = (() => {
    try {
      return new URL(message.location().url || '').pathname;
    } catch {
      return '';
    }
  })();
  const failed = (status) => message.text().startsWith(`Failed to load resource: the server responded with a status of ${status}`);
  return (path === '/auth/api/me' && failed(401)) || (path === '/auth/api/logout' && failed(403));
}

async function main() {
  const base = process.argv[2];
  if (!base) {
    console.error('usage: node tests/browser/spa.mjs BASE_URL   (for example http://127.0.0.1:5004)');
    return 1;
  }
  const baseUrl = new URL(base);
  const home = new URL('/', baseUrl).href;
  const screenshot = process.env.LOGINWITH_SCREENSHOT || '';

  const watchdog = startWatchdog();

  let browser;
  let page;
  const requests = [];
  const consoleErrors = [];
  const pageErrors = [];
  try {
    browser = await launchChromium();

    const context = await freshContext(browser);
    context.on('request', (request) => requests.push(request.url()));
    // The browser reports a Content-Security-Policy violation as an event on the document; say it
    // on the console, where the check below sees it.
    await context.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (e) => {
        console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || 'inline code'} (${e.sourceFile}:${e.lineNumber})`);
      });
    });
    page = await context.newPage();
    page.on('console', (message) => {
      if (message.type() === 'error' && !expectedConsoleError(message)) {
        consoleErrors.push(`${message.text()} (${message.location().url || page.url()})`);
      }
    });
    page.on('pageerror', (error) => pageErrors.push(String(error)));

    // 1. The page: nobody is logged in, and the providers come from /auth/api/providers.
    const response = await page.goto(home, { waitUntil: 'load' });
    check(response && response.ok(), `GET ${home} answered ${response ? response.status() : 'nothing'}`);
    await waitForText(page, '#status', 'Not logged in');
    const devLink = page.locator('#providers a[data-provider="dev"]');
    await devLink.waitFor({ state: 'visible' });
    const linkText = (await devLink.textContent())?.trim();
    check(linkText === 'Log in with Dev', `the dev provider's link says "${linkText}", expected "Log in with Dev"`);
    const href = new URL(await devLink.getAttribute('href'), home);
    check(
      href.origin === baseUrl.origin && href.pathname + href.search === '/auth/authorize/dev?next=%2F',
      `the dev provider's link goes to ${href}, expected /auth/authorize/dev?next=%2F`,
    );
    check(
      requests.some((u) => u === new URL('/auth/api/providers?next=%2F', baseUrl).href),
      `the page did not ask /auth/api/providers?next=%2F; it asked:\n  ${requests.join('\n  ')}`,
    );
    check(await page.locator('#logged-in').isHidden(), 'the logged-in part shows while nobody is logged in');
    log(`page: "Not logged in", link "${linkText}" to ${href.pathname}${href.search}`);
    if (screenshot) await page.screenshot({ path: shotPath(screenshot, 'start'), fullPage: true });

    // 2. The link -> the development provider's page: type a new address, mark it verified, Allow.
    await devLink.click();
    await page.waitForURL((url) => url.pathname === '/auth/dev-provider/authorize', { waitUntil: 'load' });
    await page.getByText('for development only').first().waitFor({ state: 'visible' });
    const email = `spa-${Date.now()}@example.com`;
    await page.locator('#email').fill(email);
    await page.getByLabel('Mark this address as verified').check();
    const consent = await clickForPost(
      page,
      page.locator('button[name="decision"][value="allow"]'),
      '/auth/dev-provider/authorize',
    );
    check(consent.status() === 303, `Allow: POST /auth/dev-provider/authorize answered ${consent.status()}, expected 303`);

    // 3. Back on the page (through `next`), which shows /auth/api/me.
    await page.waitForURL((url) => url.origin === baseUrl.origin && !url.pathname.startsWith('/auth/'), { waitUntil: 'load' });
    const landed = new URL(page.url());
    check(landed.pathname === '/' && landed.search === '', `after the login the browser is at ${landed}, expected ${home}`);
    await waitForText(page, '#status', `Logged in as ${email}`);
    await waitForText(page, '#me-email', email);
    await waitForText(page, '#me-verified', 'yes');
    const username = (await page.locator('#me-username').textContent())?.trim() ?? '';
    check(username.length > 0, '#me-username is empty');
    const identity = page.locator('#identities li[data-provider="dev"]');
    check((await identity.count()) === 1, `#identities lists ${await identity.count()} dev identities, expected 1`);
    const identityText = (await identity.textContent()) ?? '';
    check(identityText.includes(email), `the dev identity says "${identityText}", without ${email}`);
    check(await page.locator('#logged-out').isHidden(), 'the providers still show while logged in');
    check(await page.locator('#logout').isVisible(), 'no visible #logout button');
    log(`back at ${page.url()}: "Logged in as ${email}", username ${username}, identity "${identityText.trim()}"`);
    if (screenshot) {
      await page.screenshot({ path: screenshot, fullPage: true });
      log(`screenshot: ${screenshot}`);
    }

    // 4. On a phone: no horizontal scrolling.
    await page.setViewportSize(PHONE);
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    check(width <= PHONE.width, `at ${PHONE.width}x${PHONE.height} the page is ${width} px wide: it scrolls sideways`);
    log(`phone ${PHONE.width}x${PHONE.height}: page width ${width} px, no sideways scrolling`);
    if (screenshot) await page.screenshot({ path: shotPath(screenshot, 'phone'), fullPage: true });

    // 5. An API error shows its message, and nothing else changes.
    await page.route('**/auth/api/logout', (route) =>
      route.fulfill({ status: 403, contentType: 'application/json', body: JSON.stringify(REFUSAL) }),
    );
    await page.locator('#logout').click();
    await waitForText(page, '#error', REFUSAL.message);
    await waitForText(page, '#status', `Logged in as ${email}`);
    await page.unroute('**/auth/api/logout');
    log(`an API error shows on the page: "${REFUSAL.message}"`);

    // 6. Log out: a JSON POST with the page's Origin, then the page says so again.
    const logout = await clickForPost(page, page.locator('#logout'), '/auth/api/logout');
    const sent = await logout.request().allHeaders();
    check(
      logout.status() === 204,
      `POST /auth/api/logout answered ${logout.status()} (${await logout.text().catch(() => '')}); ` +
        `the browser sent Origin: ${sent.origin ?? 'none'}, Content-Type: ${sent['content-type'] ?? 'none'}`,
    );
    check(sent.origin === baseUrl.origin, `the logout's Origin is ${sent.origin ?? 'none'}, expected ${baseUrl.origin}`);
    await waitForText(page, '#status', 'Not logged in');
    await page.locator('#providers a[data-provider="dev"]').waitFor({ state: 'visible' });
    check(await page.locator('#logged-in').isHidden(), 'after logout the logged-in part still shows');
    check(await page.locator('#error').isHidden(), 'after logout the error line still shows');
    log('logged out: "Not logged in", the providers are back');

    // 7. A reload asks the server again: still logged out.
    await page.reload({ waitUntil: 'load' });
    await waitForText(page, '#status', 'Not logged in');
    check(new URL(page.url()).pathname === '/', `the reload is at ${page.url()}`);
    log('reloaded: still "Not logged in"');

    // 8. Self-contained: every request went to the app itself.
    const foreign = foreignRequests(requests, baseUrl);
    check(foreign.length === 0, `the page requested other hosts:\n  ${foreign.join('\n  ')}`);
    log(`${requests.length} requests, all to ${baseUrl.host}`);

    check(pageErrors.length === 0, `script errors on the page:\n  ${pageErrors.join('\n  ')}`);
    check(consoleErrors.length === 0, `console errors (CSP violations among them) on the page:\n  ${consoleErrors.join('\n  ')}`);
    log('no script errors, no unexpected console errors, no CSP violations');

    console.log('browser test passed');
    return 0;
  } catch (error) {
    const why = error instanceof Failure ? error.message : error && error.stack ? error.stack : String(error);
    console.error(`browser test FAILED: ${why}`);
    if (page) {
      try {
        console.error(`  at page ${page.url()}`);
        console.error(`  page text: ${await pageText(page)}`);
        if (screenshot) await page.screenshot({ path: shotPath(screenshot, 'failure'), timeout: 5_000 });
      } catch {
        // the page may be gone; the message above is what matters
      }
    }
    if (requests.length > 0) console.error(`  requests: ${requests.join(' ')}`);
    if (consoleErrors.length > 0) console.error(`  console errors: ${consoleErrors.join(' | ')}`);
    if (pageErrors.length > 0) console.error(`  script errors: ${pageErrors.join(' | ')}`);
    return 1;
  } finally {
    if (browser) await browser.close().catch(() => {});
    clearTimeout(watchdog);
  }
}

process.exitCode = await main();
