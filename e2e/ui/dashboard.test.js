// The dashboard (/ui) in a real headless Chromium, against the jobline that run.sh started:
// sign in with an operator client; a job created through a dialect API appears in the table
// live, without a reload; its page cancels it; a PXM import with a bad row shows its errors.
// Any console error (a Content-Security-Policy violation included) fails the test.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { chromium } = require('playwright-core');

const BASE = process.env.JOBLINE_URL;
const WAIT = { timeout: 30000 };

for (const name of ['JOBLINE_URL', 'UI_CLIENT_ID', 'UI_CLIENT_SECRET', 'ADMIN_CLIENT_ID', 'ADMIN_CLIENT_SECRET']) {
  if (!process.env[name]) throw new Error(`${name} is not set: run the tests through e2e/ui/run.sh`);
}

/** A token from one of jobline's two token endpoints for the admin client of tenant ui-e2e. */
async function adminToken(path) {
  const body = new URLSearchParams({
    grant_type: 'client_credentials',
    client_id: process.env.ADMIN_CLIENT_ID,
    client_secret: process.env.ADMIN_CLIENT_SECRET,
  });
  const r = await fetch(`${BASE}${path}`, { method: 'POST', body });
  assert.equal(r.status, 200, `token from ${path}`);
  return (await r.json()).access_token;
}

async function call(token, method, path, body, headers) {
  const r = await fetch(`${BASE}${path}`, {
    method,
    headers: Object.assign({ Authorization: `Bearer ${token}` }, headers || {},
      body && !(body instanceof FormData) ? { 'Content-Type': 'application/json' } : {}),
    body: body instanceof FormData ? body : body && JSON.stringify(body),
  });
  const text = await r.text();
  assert.ok(r.ok, `${method} ${path}: ${r.status} ${text}`);
  return JSON.parse(text);
}

/** A Zuora bulk create job: it waits in awaiting_input until a file is uploaded. */
async function zuoraJob(token) {
  const job = await call(token, 'POST', '/objects/jobs',
    { namespace: 'default', object: 'vehicle', operation: 'create' });
  return job.Id;
}

test('sign in, see jobs appear live, cancel one, read a failed import\'s errors', async (t) => {
  const zuora = await adminToken('/oauth/token');
  const ep = await adminToken('/oauth/access_token');
  await call(zuora, 'POST', '/objects/definitions/default', {
    definitions: { vehicle: {
      object: 'vehicle', label: 'Vehicle', type: 'object',
      properties: { vin__c: { type: 'string', label: 'VIN', maxLength: 17 } },
      required: ['vin__c'], filterable: ['vin__c'], unique: ['vin__c'],
      enableCreateRecordAuditing: false, enableDeleteRecordAuditing: false,
    } },
  });

  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium' });
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1366, height: 768 } });
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
  page.on('pageerror', (e) => problems.push(String(e)));

  // Sign in: the token goes to sessionStorage, the jobs table connects to the event stream.
  await page.goto(`${BASE}/ui`);
  await page.getByLabel('Client id').fill(process.env.UI_CLIENT_ID);
  await page.getByLabel('Client secret').fill(process.env.UI_CLIENT_SECRET);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Jobs' }).waitFor(WAIT);
  await page.locator('#live-state.live').waitFor(WAIT);

  // A PXM import with one bad row (a slug with spaces): it runs, keeps the good row, fails.
  const form = new FormData();
  form.append('file', new Blob([
    'name,description,slug,status,commodity_type,sku\n'
    + 'Shirt,e2e,shirt,live,physical,e2e-shirt\n'
    + 'Bad,e2e,not a slug,live,physical,\n',
  ], { type: 'text/csv' }), 'products.csv');
  const imported = await call(ep, 'POST', '/pcm/products/import', form);
  const importId = imported.data.id;

  // Zuora jobs created now show up in the open table without a reload.
  const waiting = await zuoraJob(zuora);
  const done = await zuoraJob(zuora);
  const upload = new FormData();
  upload.append('file', new Blob(['vin__c\nV1\nV2\n'], { type: 'text/csv' }), 'vehicles.csv');
  await call(zuora, 'POST', `/objects/jobs/${done}/files`, upload);

  const row = (id) => page.locator(`#jobs-body tr[data-job-id="${id}"]`);
  await row(waiting).waitFor(WAIT);
  assert.equal(await row(waiting).getAttribute('data-state'), 'awaiting_input');
  await page.locator(`#jobs-body tr[data-job-id="${done}"][data-state="succeeded"]`).waitFor(WAIT);
  await page.locator(`#jobs-body tr[data-job-id="${importId}"][data-state="failed"]`).waitFor(WAIT);
  const headers = await page.locator('#jobs-table thead th').allTextContents();
  assert.deepEqual(headers, ['State', 'Kind', 'Tenant', 'Queue', 'Progress', 'Age', 'Job']);
  if (process.env.UI_SCREENSHOT) {
    // Without the highlight that marks freshly changed rows.
    await page.emulateMedia({ reducedMotion: 'reduce' });
    await page.screenshot({ path: process.env.UI_SCREENSHOT });
  }

  // The job page cancels it: a job waiting for its file is cancelled at once.
  await row(waiting).getByRole('link').click();
  await page.locator('#job-summary[data-state="awaiting_input"]').waitFor(WAIT);
  await page.getByRole('button', { name: 'Cancel job' }).click();
  await page.locator('#job-summary[data-state="cancelled"]').waitFor(WAIT);
  assert.match(await page.locator('#job-message').textContent(), /cancel/i);
  assert.ok(await page.getByRole('button', { name: 'Cancel job' }).isDisabled());
  const timeline = await page.locator('#job-timeline tbody tr').count();
  assert.ok(timeline >= 2, `the creation and the cancel in the timeline, got ${timeline} rows`);

  // A finished job's files download with the session's token (the link alone carries none).
  await page.goto(`${BASE}/ui#/jobs/${done}`);
  await page.locator('#job-summary[data-state="succeeded"]').waitFor(WAIT);
  const file = page.locator('#job-files a[data-file]').first();
  await file.waitFor(WAIT);
  const [download] = await Promise.all([page.waitForEvent('download', WAIT), file.click()]);
  // Chromium adds the content type's extension (`input` saves as `input.csv`).
  assert.ok(download.suggestedFilename().startsWith(await file.getAttribute('data-file')));
  const saved = require('node:fs').readFileSync(await download.path(), 'utf8');
  assert.match(saved, /V1/, 'the uploaded CSV, byte for byte');

  // A running job cancels through `cancelling`: a 200,000-code generation, cancelled from its
  // page once the table shows it running, ends `cancelled` with both steps in its timeline.
  const promotion = await call(ep, 'POST', '/v2/promotions', { data: {
    type: 'promotion', name: 'ui e2e', promotion_type: 'fixed_discount', enabled: true, max_codes: 200000,
  } });
  const generate = await call(ep, 'POST', `/v2/promotions/${promotion.data.id}/jobs`, { data: {
    type: 'promotion_job', job_type: 'code_generate', name: 'ui e2e', parameters: { number_of_codes: 200000 },
  } });
  await page.getByRole('link', { name: 'Jobs', exact: true }).click();
  await page.locator(`#jobs-body tr[data-job-id="${generate.data.id}"][data-state="running"]`).waitFor(WAIT);
  await row(generate.data.id).getByRole('link').click();
  await page.locator('#job-summary[data-state="running"]').waitFor(WAIT);
  await page.getByRole('button', { name: 'Cancel job' }).click();
  await page.locator('#job-summary[data-state="cancelled"]').waitFor(WAIT);
  const steps = await page.locator('#job-timeline tbody tr td:nth-child(3)').allTextContents();
  assert.deepEqual(steps.slice(-2), ['cancelling', 'cancelled'], steps.join(', '));
  assert.match(await page.locator('#job-message').textContent(), /cancelled/);

  // A failed import's page lists its error rows.
  await page.goto(`${BASE}/ui#/jobs/${importId}`);
  await page.locator('#job-summary[data-state="failed"]').waitFor(WAIT);
  await page.locator('#job-errors tbody tr').first().waitFor(WAIT);
  const errors = await page.locator('#job-errors tbody').textContent();
  assert.match(errors, /slug/, errors);

  // The queues page lists the tenant's queues.
  await page.getByRole('link', { name: 'Queues' }).click();
  await page.locator('#queues-table tbody tr').first().waitFor(WAIT);
  assert.match(await page.locator('#queues-table tbody').textContent(), /ui-e2e/);

  assert.deepEqual(problems, [], 'no console errors (CSP violations included)');
});
