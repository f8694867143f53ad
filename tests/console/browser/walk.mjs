// Walks the lienthong console in Debian's headless Chromium (playwright-core), as
// tests/console_browser.rs asks: a plan (JSON, first argument) of accounts and pages; prints
// one JSON line per check and exits non-zero if any failed.
//
// For every page reached: the HTTP status, no console error (a Content-Security-Policy
// violation is one: inline script or style, or a frame the policy refuses, would show here),
// axe-core run inside the page with no serious or critical violation, and a 1366×768
// screenshot when the plan names one.
//
// Everything a person does is done with the keyboard only, as a clerk without a mouse would:
// Tab until the wanted field, link or button has the focus (by its label or its accessible
// text), then type, or press Enter or Space. Sign-in likewise — the break-glass form, or the
// province's single sign-on through the identity provider's own form. A walk's `steps` are
// { do: visit | fill | select | file | press | expect | wait_for | forge | screenshot }:
//   visit     {path, status?, contains?, absent?, controls?, no_controls?, screenshot?, press?,
//              then?}  (also `pages`)
//   fill      {label, text}        type into the field labelled `label` (its content replaced)
//   select    {label, option}      arrow keys on the select labelled `label` until `option`
//   file      {label, path}        Space on the file field, the chooser answered with `path`
//   press     {name}               Enter on the link or button named `name`; the page reached
//                                  is checked like a visited one
//   expect    {contains?, absent?, path?}   on the page as it is
//   wait_for  {text, seconds?}     reload until the page shows `text` (a document on its way)
//   forge     {path, form, csrf?, multipart?, forbidden}  a POST sent by the page itself
//                                  (fetch, same origin, its cookies), with the session's CSRF
//                                  token or without; `forbidden`: whether 403 must answer
//   screenshot {name}
//
// axe is run with page.evaluate of its source: evaluation goes through the DevTools protocol,
// which the page's CSP does not govern, so the page is checked under its real policy.

import { readFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const plan = JSON.parse(readFileSync(process.argv[2], 'utf8'));
// What the current page loaded (itself, its frames, its files): reset at each navigation.
const responses = [];
let failed = 0;
function report(check, ok, detail = {}) {
  if (!ok) failed += 1;
  process.stdout.write(`${JSON.stringify({ check, ok, ...detail })}\n`);
}

async function axe(page) {
  await page.evaluate(AXE_SOURCE);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(' ')) }));
}

// What has the focus: its tag, type, label (for a field) and accessible text (for a link or
// a button), whitespace folded.
async function focused(page) {
  return page.evaluate(() => {
    const el = document.activeElement;
    if (!el || el === document.body) return null;
    const norm = (t) => (t ?? '').replace(/\s+/g, ' ').trim();
    const label = el.labels && el.labels.length ? norm(el.labels[0].textContent) : null;
    return {
      tag: el.tagName.toLowerCase(), type: el.getAttribute('type'), id: el.id, label,
      text: norm(el.getAttribute('aria-label') ?? el.textContent ?? el.value),
    };
  });
}

// Tab (at most `limit` times) until `wanted(focused)`; true when reached.
async function tabTo(page, wanted, limit = 400) {
  for (let i = 0; i < limit; i += 1) {
    const f = await focused(page);
    if (f && wanted(f)) return true;
    await page.keyboard.press('Tab');
  }
  const f = await focused(page);
  return Boolean(f && wanted(f));
}

const isField = (label) => (f) => f.label === label;
const isControl = (name) => (f) => (f.tag === 'a' || f.tag === 'button' || f.type === 'submit') && f.text === name;

// Enter on what has the focus, waiting for the page it leads to.
async function enterAndWait(page) {
  await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
}

// Keyboard only: from the top of the sign-in page, Tab to the user field, type, Tab to the
// password, type, Enter.
async function signInByKeyboard(page, base, account) {
  await page.goto(`${base}/console/login`);
  if (!(await tabTo(page, (f) => f.id === 'user', 40))) return false;
  await page.keyboard.type(account.user);
  await page.keyboard.press('Tab');
  await page.keyboard.type(account.password);
  await enterAndWait(page);
  return new URL(page.url()).pathname === '/console/';
}

// Single sign-on, keyboard only: the console's SSO link, then the provider's own form
// (login, password, Enter), back on the console's overview.
async function signInBySso(page, base, account) {
  await page.goto(`${base}/console/login`);
  if (!(await tabTo(page, isControl('Đăng nhập một lần (SSO)'), 40))) return 'no SSO link';
  await enterAndWait(page);
  if (new URL(page.url()).origin === new URL(base).origin) return `not sent to the provider: ${page.url()}`;
  if (!(await tabTo(page, (f) => f.id === 'login', 20))) return 'no login field at the provider';
  await page.keyboard.type(account.user);
  await page.keyboard.press('Tab');
  await page.keyboard.type(account.password);
  await Promise.all([
    page.waitForURL((u) => u.origin === new URL(base).origin && u.pathname.startsWith('/console'), { timeout: 20000 }),
    page.keyboard.press('Enter'),
  ]);
  const at = new URL(page.url()).pathname;
  return at === '/console/' ? true : `came back to ${at}`;
}

// The checks every page reached gets: status (when known), console errors, axe.
async function checkPage(page, label, errors, status, expectedStatus = 200) {
  if (status !== undefined) report(`status ${label}`, status === expectedStatus, { status });
  const violations = await axe(page);
  report(`axe ${label}`, violations.length === 0, { violations });
  // A page expected to answer an error status logs that status itself: not a fault.
  const expected = expectedStatus !== 200 ? `the server responded with a status of ${expectedStatus}` : null;
  const unexpected = errors.filter((e) => !(expected && e.includes(expected)));
  report(`console ${label}`, unexpected.length === 0, { errors: unexpected });
  errors.length = 0;
}

async function texts(page, label, contains = [], absent = []) {
  const text = await page.textContent('body');
  for (const needle of contains) report(`text ${label} “${needle}”`, text.includes(needle));
  for (const needle of absent) report(`no text ${label} “${needle}”`, !text.includes(needle));
}

// Links and buttons by accessible name (a prefix: "Kiểm tra kết nối" covers "Kiểm tra kết nối
// nghean"): those that must be there, and those that must not — a forbidden action is hidden.
async function controls(page, label, present = [], missing = []) {
  if (!present.length && !missing.length) return;
  const names = await page.evaluate(() => [...document.querySelectorAll('a, button, input[type=submit]')]
    .map((el) => (el.getAttribute('aria-label') ?? el.textContent ?? el.value).replace(/\s+/g, ' ').trim()));
  for (const c of present) report(`control ${label} “${c}”`, names.some((n) => n.startsWith(c)));
  for (const c of missing) report(`no control ${label} “${c}”`, !names.some((n) => n.startsWith(c)), { names });
}

// A screenshot of the page's top (where a reader starts), or as it is scrolled (`asScrolled`:
// a form filled in by keyboard, seen where the focus is).
async function shoot(page, shots, name, asScrolled = false) {
  if (!name || !shots) return;
  mkdirSync(shots, { recursive: true });
  if (!asScrolled) await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: false });
}

async function visit(page, base, step, shots, errors) {
  errors.length = 0;
  const res = await page.goto(`${base}${step.path}`);
  await texts(page, step.path, step.contains, step.absent);
  await controls(page, step.path, step.controls, step.no_controls);
  await checkPage(page, step.path, errors, res?.status() ?? 0, step.status ?? 200);
  await shoot(page, shots, step.screenshot);
  // A button of the page pressed with the keyboard (focus, Enter), then what must show.
  if (step.press) {
    const button = page.getByRole('button', { name: step.press, exact: true }).first();
    await button.focus();
    await enterAndWait(page);
    await texts(page, `after “${step.press}” on ${step.path}`, step.then);
    await checkPage(page, `after “${step.press}”`, errors);
    await shoot(page, shots, step.then_screenshot);
  }
}

// One step of a walk's `steps` (see the head of this file).
async function act(page, base, step, shots, errors, n) {
  const where = () => new URL(page.url()).pathname + new URL(page.url()).search;
  switch (step.do) {
    case 'visit':
      return visit(page, base, step, shots, errors);
    case 'fill': {
      const ok = await tabTo(page, isField(step.label));
      report(`step ${n}: Tab to “${step.label}” on ${where()}`, ok);
      if (!ok) return;
      await page.keyboard.press('Control+A');
      await page.keyboard.press('Delete');
      await page.keyboard.type(step.text);
      return;
    }
    case 'select': {
      const ok = await tabTo(page, isField(step.label));
      report(`step ${n}: Tab to “${step.label}” on ${where()}`, ok);
      if (!ok) return;
      const chosen = () => page.evaluate(() => document.activeElement.selectedOptions[0]?.textContent.trim());
      for (const key of ['Home', 'ArrowDown', 'ArrowDown', 'ArrowDown', 'ArrowDown', 'ArrowDown', 'ArrowDown', 'ArrowDown', 'ArrowDown', 'ArrowDown', 'ArrowDown']) {
        if (key !== 'Home' && (await chosen()) === step.option) break;
        await page.keyboard.press(key);
      }
      report(`step ${n}: “${step.option}” chosen in “${step.label}”`, (await chosen()) === step.option);
      return;
    }
    case 'file': {
      const ok = await tabTo(page, isField(step.label));
      report(`step ${n}: Tab to “${step.label}” on ${where()}`, ok);
      if (!ok) return;
      const [chooser] = await Promise.all([page.waitForEvent('filechooser'), page.keyboard.press('Space')]);
      await chooser.setFiles(step.path);
      return;
    }
    case 'press': {
      const from = where();
      const ok = await tabTo(page, isControl(step.name));
      report(`step ${n}: Tab to “${step.name}” on ${from}`, ok);
      if (!ok) return;
      const [res] = await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
      await texts(page, `after “${step.name}” on ${from}`, step.contains, step.absent);
      await checkPage(page, `after “${step.name}” on ${from} (${where()})`, errors, res?.status() ?? 200, step.status ?? 200);
      await shoot(page, shots, step.screenshot);
      return;
    }
    case 'expect':
      if (step.response) {
        // A resource the page loaded (a frame's document, say): its status and type.
        const { url_contains: part, status, type } = step.response;
        const r = responses.find((x) => x.url.includes(part));
        report(`step ${n}: ${where()} loaded “${part}” (${status}, ${type})`,
          Boolean(r && r.status === status && r.type.startsWith(type)), { seen: r ?? responses.map((x) => x.url) });
      }
      if (step.path) report(`step ${n}: at ${step.path}`, new URL(page.url()).pathname === step.path, { at: where() });
      await texts(page, where(), step.contains, step.absent);
      return;
    case 'wait_for': {
      const until = Date.now() + 1000 * (step.seconds ?? 60);
      let seen = false;
      for (;;) {
        seen = (await page.textContent('body')).includes(step.text);
        if (seen || Date.now() > until) break;
        await page.waitForTimeout(250);
        await page.reload();
      }
      report(`step ${n}: “${step.text}” shows on ${where()}`, seen);
      await checkPage(page, where(), errors);
      await shoot(page, shots, step.screenshot);
      return;
    }
    case 'forge': {
      const got = await page.evaluate(async ({ path: p, form, csrf, multipart }) => {
        const token = document.querySelector('input[name="_csrf"]')?.value ?? '';
        const fields = { ...form };
        if (csrf) fields._csrf = token;
        let body;
        if (multipart) {
          body = new FormData();
          for (const [k, v] of Object.entries(fields)) body.append(k, v);
        } else {
          body = new URLSearchParams(fields);
        }
        const r = await fetch(p, { method: 'POST', body, redirect: 'manual', credentials: 'same-origin' });
        return { status: r.status, type: r.type, token: token !== '' };
      }, step);
      report(`forged POST ${step.path} (CSRF token: ${Boolean(step.csrf)}) ${step.forbidden ? 'refused' : 'not refused'}`,
        (got.status === 403) === step.forbidden && (!step.csrf || got.token), got);
      // The refused answer logs a 403 in the page's console: expected here.
      errors.length = 0;
      return;
    }
    case 'screenshot':
      return shoot(page, shots, step.name, true);
    default:
      report(`step ${n}: unknown step ${JSON.stringify(step)}`, false);
  }
}

const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
try {
  for (const walk of plan.walks) {
    const context = await browser.newContext({ viewport: { width: 1366, height: 768 }, locale: 'vi-VN' });
    const page = await context.newPage();
    const errors = [];
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('framenavigated', (f) => { if (f === page.mainFrame()) responses.length = 0; });
    page.on('response', (r) => responses.push({ url: r.url(), status: r.status(), type: r.headers()['content-type'] ?? '' }));
    if (walk.login_page) {
      await visit(page, plan.base, { path: '/console/login', screenshot: walk.login_page }, plan.screenshots, errors);
    }
    const base = walk.base ?? plan.base;
    if (walk.account) {
      report(`keyboard sign-in ${walk.account.user}`, await signInByKeyboard(page, base, walk.account));
    }
    if (walk.sso) {
      const got = await signInBySso(page, base, walk.sso);
      report(`keyboard single sign-on ${walk.sso.user}`, got === true, { got });
      errors.length = 0; // the provider's own page is not the console's to answer for
    }
    for (const step of walk.pages ?? []) {
      await visit(page, base, step, plan.screenshots, errors);
    }
    let n = 0;
    for (const step of walk.steps ?? []) {
      n += 1;
      await act(page, base, step, plan.screenshots, errors, n);
    }
    if (walk.phone) {
      await page.setViewportSize({ width: 375, height: 740 });
      for (const p of walk.phone) {
        await page.goto(`${base}${p}`);
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        report(`phone width ${p}`, overflow <= 1, { overflow });
      }
    }
    await context.close();
  }
} finally {
  await browser.close();
}
process.exit(failed === 0 ? 0 : 1);
