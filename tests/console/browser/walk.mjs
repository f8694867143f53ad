// Walks the lienthong console in Debian's headless Chromium (playwright-core), as
// tests/console_browser.rs asks: a plan (JSON, first argument) of accounts and pages; prints
// one JSON line per check and exits non-zero if any failed.
//
// For every page visited: the HTTP status, no console error (a Content-Security-Policy
// violation is one: inline script or style would show here), axe-core run inside the page with
// no serious or critical violation, and a 1366×768 screenshot when the plan names one.
// Sign-in is done with the keyboard only (Tab, typing, Enter), as a clerk without a mouse would.
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

// Keyboard only: from the top of the sign-in page, Tab to the user field, type, Tab to the
// password, type, Enter.
async function signInByKeyboard(page, base, account) {
  await page.goto(`${base}/console/login`);
  for (let i = 0; i < 20; i += 1) {
    await page.keyboard.press('Tab');
    const id = await page.evaluate(() => document.activeElement?.id);
    if (id === 'user') break;
  }
  const focused = await page.evaluate(() => document.activeElement?.id);
  if (focused !== 'user') return false;
  await page.keyboard.type(account.user);
  await page.keyboard.press('Tab');
  await page.keyboard.type(account.password);
  await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
  return new URL(page.url()).pathname === '/console/';
}

async function visit(page, base, step, shots, errors) {
  errors.length = 0;
  const res = await page.goto(`${base}${step.path}`);
  const status = res?.status() ?? 0;
  report(`status ${step.path}`, status === (step.status ?? 200), { status });
  if (step.contains) {
    const text = await page.textContent('body');
    for (const needle of step.contains) {
      report(`text ${step.path} “${needle}”`, text.includes(needle));
    }
  }
  if (step.absent) {
    const text = await page.textContent('body');
    for (const needle of step.absent) {
      report(`no text ${step.path} “${needle}”`, !text.includes(needle));
    }
  }
  const violations = await axe(page);
  report(`axe ${step.path}`, violations.length === 0, { violations });
  // A page expected to answer an error status logs that status itself: not a fault.
  const expected = step.status && step.status !== 200
    ? `the server responded with a status of ${step.status}` : null;
  const unexpected = errors.filter((e) => !(expected && e.includes(expected)));
  report(`console ${step.path}`, unexpected.length === 0, { errors: unexpected });
  if (step.screenshot && shots) {
    mkdirSync(shots, { recursive: true });
    await page.screenshot({ path: path.join(shots, `${step.screenshot}.png`), fullPage: false });
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
    if (walk.login_page) {
      await visit(page, plan.base, { path: '/console/login', screenshot: walk.login_page }, plan.screenshots, errors);
    }
    if (walk.account) {
      report(`keyboard sign-in ${walk.account.user}`, await signInByKeyboard(page, plan.base, walk.account));
    }
    for (const step of walk.pages ?? []) {
      await visit(page, plan.base, step, plan.screenshots, errors);
      // A button of the page pressed with the keyboard (focus, Enter), then what must show.
      if (step.press) {
        const button = page.getByRole('button', { name: step.press, exact: true }).first();
        await button.focus();
        await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
        const text = await page.textContent('body');
        for (const needle of step.then ?? []) {
          report(`after “${step.press}” on ${step.path}: “${needle}”`, text.includes(needle));
        }
        const violations = await axe(page);
        report(`axe after “${step.press}”`, violations.length === 0, { violations });
        if (step.then_screenshot && plan.screenshots) {
          await page.screenshot({ path: path.join(plan.screenshots, `${step.then_screenshot}.png`) });
        }
      }
    }
    if (walk.phone) {
      await page.setViewportSize({ width: 375, height: 740 });
      for (const p of walk.phone) {
        await page.goto(`${plan.base}${p}`);
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
