// Security: the built pages carry a Content-Security-Policy without inline script or eval, using
// the app breaks none of it, and with the network log recorded nothing is sent off the site.
import { expect, test } from '@playwright/test';
import { buildPrompt, generate, normalise, readFixture, waitForModel } from './helpers';

test('a few-shot answer under the CSP: no violation, no request off the site', async ({ page, baseURL }) => {
  const origin = new URL(baseURL!).origin;
  const requests: string[] = [];
  page.on('request', (request) => requests.push(request.url()));
  await page.addInitScript(() => {
    const seen: string[] = [];
    (window as unknown as { cspViolations: string[] }).cspViolations = seen;
    document.addEventListener('securitypolicyviolation', (e) => seen.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  await page.goto('/?backend=wasm');
  const policy = await page.locator('meta[http-equiv="Content-Security-Policy"]').getAttribute('content');
  expect(policy).toBeTruthy();
  const scriptSrc = policy!.split(';').map((d) => d.trim()).find((d) => d.startsWith('script-src'))!;
  expect(scriptSrc).not.toMatch(/'unsafe-inline'|'unsafe-eval'/);
  expect(policy).toMatch(/connect-src 'self'/);
  await waitForModel(page, 'wasm');
  const fixture = readFixture();
  await buildPrompt(page, fixture);
  expect(normalise(await generate(page))).toBe(normalise(fixture.answer));
  expect(await page.evaluate(() => (window as unknown as { cspViolations: string[] }).cspViolations)).toEqual([]);
  const offSite = requests.filter((url) => !url.startsWith('data:') && !url.startsWith('blob:') && new URL(url).origin !== origin);
  expect(offSite).toEqual([]);
  expect(requests.length).toBeGreaterThan(0);
});
