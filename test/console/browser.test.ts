/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The web console in a real browser: Debian's Chromium, driven by playwright-core (which never
 * downloads a browser), against a real `ota-server` process and 20 protocol devices checking in
 * over HTTP. Ops log in, see the fleet, start a rollout of a healthy release and watch it walk
 * its phases without reloading the page; start a bad release, watch it pause itself on the first
 * failure, resume it, abort it. A technician asks for a rollback and sees it carried out, and is
 * refused a rollout by the page and by the API. Each page passes basic accessibility checks
 * (every field labelled, buttons reachable with Tab, focus visible). Screenshots go to
 * test-artifacts/console/ (and to docs/img/ with OTA_CONSOLE_DOC_SHOTS=1).
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startConsoleFleet, type ConsoleFleet } from '../../scripts/fleet/console-fleet.js';
import { ROOT } from '../helpers/cli.js';

const CHROMIUM = process.env.OTA_CHROMIUM ?? '/usr/bin/chromium';
const SHOTS = join(ROOT, 'test-artifacts', 'console');
const DOC_SHOTS = join(ROOT, 'docs', 'img');
const DEVICES = 20;
const present = existsSync(CHROMIUM);
if (!present && process.env.OTA_REQUIRE_BROWSER) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (or set OTA_CHROMIUM)`);

let work: string;
let fleet: ConsoleFleet;
let browser: Browser;

beforeAll(async () => {
  if (!present) return;
  work = await mkdtemp(join(tmpdir(), 'otaab-console-'));
  await mkdir(SHOTS, { recursive: true });
  fleet = await startConsoleFleet({ work, devices: DEVICES });
  // Root in CI: Chromium's sandbox needs user namespaces it does not get there.
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'] });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await fleet?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

async function shot(page: Page, name: string, docs = false): Promise<void> {
  // The page as a person first sees it: no focus ring left by the keyboard checks, no toast.
  await page.evaluate(() => {
    (document.activeElement as HTMLElement | null)?.blur();
    document.getElementById('status')?.replaceChildren();
    window.scrollTo(0, 0);
  });
  const file = join(SHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: false });
  if (docs && process.env.OTA_CONSOLE_DOC_SHOTS) {
    await mkdir(DOC_SHOTS, { recursive: true });
    await copyFile(file, join(DOC_SHOTS, `console-${name}.png`));
  }
}

/** Fields without a label, by their name or tag. */
async function unlabelled(page: Page): Promise<string[]> {
  return page.evaluate(() =>
    [...document.querySelectorAll('input, select, textarea')]
      .filter((el) => (el as HTMLInputElement).type !== 'hidden')
      .filter((el) => (el as HTMLInputElement).labels?.length === 0 && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby'))
      .map((el) => (el as HTMLInputElement).name || el.tagName.toLowerCase()),
  );
}

/**
 * Presses Tab through the page: every enabled, visible button must take the focus, and each
 * focused element must show an outline (the focus ring). Returns the problems found.
 */
async function keyboardProblems(page: Page, presses = 120): Promise<string[]> {
  await page.evaluate(() => {
    (document.activeElement as HTMLElement | null)?.blur();
    window.scrollTo(0, 0);
  });
  const reached = new Set<string>();
  const problems: string[] = [];
  for (let i = 0; i < presses; i++) {
    await page.keyboard.press('Tab');
    const f = await page.evaluate(() => {
      const el = document.activeElement as HTMLElement | null;
      if (!el || el === document.body) return null;
      const style = getComputedStyle(el);
      // Pages re-render every 2 s: an element is known by what it is, not by its identity.
      const key = `${el.tagName} ${el.getAttribute('href') ?? ''} ${(el.textContent ?? '').trim()}`;
      return { key, tag: el.tagName, text: (el.textContent ?? '').trim().slice(0, 40), outline: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2 };
    });
    if (!f) continue;
    if (!f.outline) problems.push(`no visible focus on ${f.tag} "${f.text}"`);
    reached.add(f.key);
  }
  const buttons = await page.evaluate(() =>
    [...document.querySelectorAll('button, a[href]')]
      .filter((b) => !(b as HTMLButtonElement).disabled && (b as HTMLElement).offsetParent !== null)
      .map((b) => ({ key: `${b.tagName} ${b.getAttribute('href') ?? ''} ${(b.textContent ?? '').trim()}`, text: (b.textContent ?? '').trim().slice(0, 40) })),
  );
  for (const b of buttons.slice(0, 40)) if (!reached.has(b.key)) problems.push(`not reachable with Tab: "${b.text}"`);
  return problems;
}

/** A page that records console errors (a CSP violation is one) and uncaught exceptions. */
async function newPage(): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  const errors: string[] = [];
  // A refused request is logged by Chromium as "Failed to load resource": those are expected.
  page.on('console', (m) => void (m.type() === 'error' && !m.text().startsWith('Failed to load resource') && errors.push(m.text())));
  page.on('pageerror', (e) => void errors.push(e.message));
  return { page, errors };
}

async function login(page: Page, token: string): Promise<void> {
  await page.goto(`${fleet.url}/console/`);
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.locator('#fleet-total').waitFor();
}

/** Goes to a page by its link in the navigation and waits until it shows (its heading). */
async function open(page: Page, name: string): Promise<void> {
  await page.getByRole('navigation', { name: 'Pages', exact: true }).getByRole('link', { name }).click();
  await page.getByRole('heading', { name, level: 1 }).waitFor();
}

/** The state of the rollout card of `version` (the newest one). */
function rolloutCard(page: Page, version: string) {
  return page.locator('article.rollout', { has: page.getByRole('heading', { name: `gateway ${version}` }) }).first();
}

describe.skipIf(!present)('the console in Chromium', () => {
  it('lets ops log in, see the fleet and walk a healthy rollout through its phases without a reload', async () => {
    const { page, errors } = await newPage();
    await page.goto(`${fleet.url}/console/`);
    expect(await unlabelled(page)).toEqual([]);
    await shot(page, 'login', true);
    await login(page, fleet.tokens.ops);
    await expect.poll(() => page.locator('#fleet-total').textContent(), { timeout: 30_000 }).toBe(`${DEVICES} devices`);
    await expect.poll(() => page.locator('tbody tr').count()).toBe(DEVICES);
    // Every device checked in: its row shows the slot and the factory version it runs.
    await expect.poll(() => page.locator('tbody tr', { hasText: '1.0.0' }).count(), { timeout: 30_000 }).toBe(DEVICES);
    expect(await unlabelled(page)).toEqual([]);
    expect(await keyboardProblems(page)).toEqual([]);
    await shot(page, 'fleet', true);

    // Filters: the pilot tag and a device id prefix.
    await page.getByLabel('Tag').fill('pilot');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await expect.poll(() => page.locator('#fleet-total').textContent()).toBe(`${DEVICES / 4} devices`);
    await page.getByRole('button', { name: 'Clear' }).click();
    await expect.poll(() => page.locator('#fleet-total').textContent()).toBe(`${DEVICES} devices`);

    await open(page, 'Rollouts');
    await page.getByLabel('Version').selectOption('1.1.0');
    await page.getByLabel('Phases').fill('25%, 100%');
    await page.evaluate(() => ((window as unknown as { noReload: boolean }).noReload = true));
    // Live by server-sent events, not by polling: the stream is up before the rollout starts.
    const live = page.locator('#live');
    await expect.poll(() => live.getAttribute('data-mode'), { timeout: 10_000 }).toBe('events');
    const eventsBefore = Number(await live.getAttribute('data-events'));
    await page.getByRole('button', { name: 'Start rollout' }).click();
    const card = rolloutCard(page, '1.1.0');
    await card.waitFor();
    const progress = card.locator('[data-phase="0"] .mono');
    const firstSeen = await progress.textContent();
    // The page follows the rollout by itself: phase 1 fills, then phase 2 opens and completes.
    await expect.poll(() => card.getAttribute('data-state'), { timeout: 90_000 }).toBe('completed');
    // Completed once 90 % succeeded; the last devices finish a moment later, still without a reload.
    await expect.poll(() => card.locator('[data-phase="1"] .mono').textContent(), { timeout: 60_000 }).toMatch(/^15 ok · 0 failed/);
    expect(await page.evaluate(() => (window as unknown as { noReload?: boolean }).noReload)).toBe(true);
    // The progress moved because events came: the stream stayed up the whole time (no polling).
    expect(await progress.textContent()).not.toBe(firstSeen);
    expect(await live.getAttribute('data-mode')).toBe('events');
    expect(Number(await live.getAttribute('data-events'))).toBeGreaterThan(eventsBefore);
    expect(await unlabelled(page)).toEqual([]);
    expect(await keyboardProblems(page)).toEqual([]);
    await shot(page, 'rollouts', true);
    expect(errors).toEqual([]);
    await page.close();
  }, 180_000);

  it('shows a bad rollout pausing itself on its failures, resumed and aborted by ops', async () => {
    const { page, errors } = await newPage();
    await login(page, fleet.tokens.ops);
    await open(page, 'Rollouts');
    await page.getByLabel('Version').selectOption('1.2.0');
    await page.getByLabel('Phases').fill('2, 100%');
    await page.getByLabel('Pause at failure %').fill('0');
    await page.getByLabel('Pause at failures').fill('1');
    await page.getByRole('button', { name: 'Start rollout' }).click();
    const card = rolloutCard(page, '1.2.0');
    await expect.poll(() => card.getAttribute('data-state'), { timeout: 60_000 }).toBe('paused');
    await expect.poll(() => card.locator('[data-reason]').textContent()).toMatch(/paused by itself.*health-check:app/);
    await expect.poll(() => card.getByText('Failures by reason').count(), { timeout: 10_000 }).toBe(1);
    await shot(page, 'rollout-paused', true);
    // No device beyond the first phase was offered the bad release.
    const fleetRows = await fetch(`${fleet.url}/v1/fleet/devices?limit=100`, { headers: { authorization: `Bearer ${fleet.tokens.ops}` } }).then((r) => r.json() as Promise<{ devices: { lastOutcome: { version: string } | null }[] }>);
    expect(fleetRows.devices.filter((d) => d.lastOutcome?.version === '1.2.0').length).toBeLessThanOrEqual(2);

    // The server's answer to the click is the proof: a device of the first phase still installing
    // the bad release may report its failure right after and pause the rollout again at once
    // (failures after a resume count anew), so the card need not be seen running.
    const resumed = page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/resume'));
    await card.getByRole('button', { name: 'Resume' }).click();
    const answer = await resumed;
    expect(answer.status()).toBe(200);
    expect(((await answer.json()) as { state: string }).state).toBe('running');
    await expect.poll(() => page.getByText(/1\.2\.0: resume done/).count(), { timeout: 4000 }).toBe(1);
    page.once('dialog', (d) => void d.accept());
    await card.getByRole('button', { name: 'Abort' }).click();
    await expect.poll(() => card.getAttribute('data-state')).toBe('aborted');
    expect(errors).toEqual([]);
    await page.close();
  }, 120_000);

  it('lets a technician ask for a rollback, and refuses them a rollout in the page and in the API', async () => {
    const { page, errors } = await newPage();
    await login(page, fleet.tokens.technician);
    await expect(page.locator('#who').textContent()).resolves.toMatch(/^technician/);
    // A device that runs 1.1.0 and still has 1.0.0 in its other slot (not one of the two that
    // tried the bad 1.2.0: their other slot holds it, and a rollback there is refused).
    const target = fleet.devices.find((d) => d.runningVersion === '1.1.0' && d.rollbackVersion === '1.0.0')!;
    expect(target).toBeDefined();
    await page.getByRole('link', { name: target.id, exact: true }).click();
    await page.getByLabel('Note for the rollback').fill('site reports a stuck Modbus poller');
    expect(await unlabelled(page)).toEqual([]);
    await page.getByRole('button', { name: 'Ask for a rollback' }).click();
    const rollbacks = page.locator('table', { has: page.locator('caption', { hasText: 'Rollback requests' }) });
    await expect.poll(() => rollbacks.locator('tbody tr').first().textContent(), { timeout: 30_000 }).toMatch(/success.*technician|technician.*success/s);
    await expect.poll(() => page.locator('dl.facts').first().textContent()).toMatch(/Last outcomesuccess 1\.0\.0 technician/);
    expect(await keyboardProblems(page)).toEqual([]);
    await shot(page, 'device', true);

    await open(page, 'Rollouts');
    await page.locator('#start-refused').waitFor();
    expect(await page.getByRole('button', { name: 'Start rollout' }).isDisabled()).toBe(true);
    const buttons = page.locator('article.rollout button');
    await expect.poll(() => buttons.count()).toBeGreaterThan(0);
    for (const b of await buttons.all()) expect(await b.isDisabled()).toBe(true);
    await shot(page, 'rollouts-technician');
    // The page hides nothing the API would allow: the API itself refuses the technician.
    const refused = await page.evaluate(async () => {
      const token = sessionStorage.getItem('otaab.token');
      const res = await fetch('/v1/rollouts', { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ product: 'gateway', version: '1.1.0' }) });
      return { status: res.status, body: (await res.json()) as { error: string } };
    });
    expect(refused).toMatchObject({ status: 403, body: { error: 'AUTH_FORBIDDEN' } });

    await open(page, 'Releases');
    await page.getByRole('heading', { name: 'gateway 1.2.0' }).waitFor();
    expect(await page.locator('article', { hasText: 'gateway 1.1.0' }).getByText('gateway-app').count()).toBeGreaterThan(0);
    // delta-report's figures: what a device running 1.1.0 downloads for 1.2.0, as the API computes them.
    const figures = await fetch(`${fleet.url}/v1/products/gateway/releases/1.2.0/delta`, { headers: { authorization: `Bearer ${fleet.tokens.technician}` } }).then(
      (r) => r.json() as Promise<{ deltas: { from: string; report: { wireBytes: number; bundleBytes: number; requests: number } }[] }>,
    );
    const fromPrevious = figures.deltas.find((d) => d.from === '1.1.0')!.report;
    expect(fromPrevious.wireBytes).toBeLessThan(fromPrevious.bundleBytes / 2);
    const shown = page.getByRole('article', { name: 'gateway 1.2.0' }).locator('li[data-from="1.1.0"]');
    await expect.poll(() => shown.textContent(), { timeout: 20_000 }).toMatch(new RegExp(`^from 1\\.1\\.0: .* in ${fromPrevious.requests} requests?; `));
    expect(await page.getByRole('article', { name: 'gateway 1.1.0' }).getByText('no earlier release of this product').count()).toBe(1);
    expect(await keyboardProblems(page)).toEqual([]);
    await shot(page, 'releases', true);
    expect(errors).toEqual([]);
    await page.close();
  }, 120_000);
  it('falls back to polling while the event stream is down, and takes the stream again when it is back', async () => {
    const { page, errors } = await newPage();
    // The stream refused (a proxy that drops it, a network blip): the page polls instead.
    await page.route('**/v1/events', (r) => r.abort());
    await login(page, fleet.tokens.ops);
    const live = page.locator('#live');
    await expect.poll(() => live.getAttribute('data-mode'), { timeout: 10_000 }).toBe('polling');
    const refreshes = Number(await live.getAttribute('data-refreshes'));
    await expect.poll(async () => Number(await live.getAttribute('data-refreshes')), { timeout: 10_000 }).toBeGreaterThan(refreshes + 1);
    await page.unroute('**/v1/events');
    await expect.poll(() => live.getAttribute('data-mode'), { timeout: 20_000 }).toBe('events');
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);
});
