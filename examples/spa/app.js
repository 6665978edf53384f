// The example single-page app: plain DOM, no framework, no build step. It talks to loginwith's
// JSON API under /auth on the page's own origin, so the browser sends the session cookie by itself
// and no CORS is involved. Everything the API says is put on the page with textContent, never
// innerHTML: an address or a name cannot become markup.
'use strict';

const API = '/auth/api';

const byId = (id) => document.getElementById(id);

// An error answer of the API: `message` is for people, `code` for programs.
class ApiError extends Error {
  constructor(status, body) {
    super(body && typeof body.message === 'string' ? body.message : `The server answered ${status}.`);
    this.status = status;
    this.code = body && body.code;
  }
}

// A request to the API: the JSON body of a success (null for 204 No Content), else an ApiError.
async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(API + path, {
      ...options,
      credentials: 'same-origin',
      headers: { Accept: 'application/json', ...options.headers },
    });
  } catch {
    throw new Error('The server cannot be reached.');
  }
  const json = (response.headers.get('Content-Type') || '').startsWith('application/json');
  const body = json ? await response.json().catch(() => null) : null;
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

// The error line: a message, or hidden when there is none.
function showError(message) {
  const line = byId('error');
  line.textContent = message || '';
  line.hidden = !message;
}

// The logged-in user, or null when nobody is (401).
async function fetchMe() {
  try {
    return await api('/me');
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return null;
    throw error;
  }
}

function showLoggedIn(me) {
  // email is null for providers that give no address (X): the username is always there.
  byId('status').textContent = `Logged in as ${me.email ?? me.username}`;
  byId('me-email').textContent = me.email ?? '(none)';
  byId('me-verified').textContent = me.email_verified ? 'yes' : 'no';
  byId('me-username').textContent = me.username;
  byId('me-name').textContent = me.display_name || '—';
  byId('identities').replaceChildren(...me.identities.map(identityItem));
  byId('logged-out').hidden = true;
  byId('logged-in').hidden = false;
}

// "dev alice@example.com (verified), last login 5/6/2025, 10:00:00"
function identityItem(identity) {
  const item = document.createElement('li');
  item.dataset.provider = identity.provider;
  const provider = document.createElement('strong');
  provider.textContent = identity.provider;
  const verified = identity.email_verified ? ' (verified)' : '';
  const lastLogin = new Date(identity.last_login_at * 1000).toLocaleString();
  item.append(provider, ` ${identity.email ?? '(no address)'}${verified}, last login ${lastLogin}`);
  return item;
}

async function showLoggedOut() {
  // Each login URL carries `next`: the provider's redirect comes back to this very page.
  const here = location.pathname + location.search;
  const { providers } = await api(`/providers?next=${encodeURIComponent(here)}`);
  byId('providers').replaceChildren(...providers.map(providerItem));
  byId('status').textContent = 'Not logged in';
  byId('logged-in').hidden = true;
  byId('logged-out').hidden = false;
}

// A link that starts the login (a full-page redirect), or a disabled button for a provider that
// cannot be used right now.
function providerItem(provider) {
  const item = document.createElement('li');
  const label = `Log in with ${provider.display_name}`;
  const url = httpUrl(provider.login_url);
  if (provider.available && url) {
    const link = document.createElement('a');
    link.className = 'button';
    link.href = url;
    link.dataset.provider = provider.name;
    link.textContent = label;
    item.append(link);
  } else {
    const button = document.createElement('button');
    button.type = 'button';
    button.disabled = true;
    button.dataset.provider = provider.name;
    button.textContent = `${label} (unavailable)`;
    item.append(button);
  }
  return item;
}

// Only http(s) links: the login URLs are loginwith's own, but data never becomes `javascript:`.
function httpUrl(raw) {
  try {
    const url = new URL(raw, location.href);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch {
    return null;
  }
}

// Asks the API who is logged in and shows it.
async function render() {
  try {
    const me = await fetchMe();
    if (me) showLoggedIn(me);
    else await showLoggedOut();
    showError('');
  } catch (error) {
    byId('status').textContent = 'Something went wrong';
    showError(error.message);
  }
}

// POST /api/logout. The browser adds Origin; the JSON content type is what a cross-site form
// cannot send, and what loginwith asks of a change.
async function logOut() {
  const button = byId('logout');
  button.disabled = true;
  try {
    await api('/logout', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
    await render();
  } catch (error) {
    showError(error.message);
  } finally {
    button.disabled = false;
  }
}

byId('logout').addEventListener('click', logOut);
// Back from another page into the browser's page cache: the session may have changed since.
window.addEventListener('pageshow', (event) => {
  if (event.persisted) render();
});
render();
