// Elastic Path PXM jobs through the real @elasticpath/js-sdk (shared/spec/sdk-clients.md §1.5),
// against a jobline started by run.sh: products and a hierarchy made with the SDK's own CRUD,
// one job of each kind, list/get/errors, the export file fetched with a plain GET and no token,
// and a cancel of a queued job. From Node the SDK's import methods cannot send a file (they
// JSON-wrap it), so uploads go through its transport with a multipart content type, and the
// JSON body the SDK itself sends must get a clean 4xx (vendor-apis.md D.2).
'use strict';

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { client, poll } = require('./client');

const BOUNDARY = 'jobline-e2e-boundary';

/** A multipart body with one `file` part (and optional extra fields). */
function multipart(filename, content, fields = {}) {
  let body = '';
  for (const [k, v] of Object.entries(fields)) {
    body += `--${BOUNDARY}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`;
  }
  body += `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\n`;
  body += `Content-Type: application/octet-stream\r\n\r\n${content}\r\n--${BOUNDARY}--\r\n`;
  return body;
}

/** Uploads through the SDK's transport (sdk-clients.md §1.5, "Multipart under Node"). */
function upload(EP, path, body) {
  return EP.PCM.request.send(path, 'POST', body, undefined, undefined, false, 'pcm', {
    'Content-Type': `multipart/form-data; boundary=${BOUNDARY}`,
  });
}

async function finished(EP, id) {
  return poll(`pxm job ${id}`, async () => {
    const job = await EP.PCM.Jobs.Get(id);
    return ['success', 'failed', 'cancelled'].includes(job.data.attributes.status) ? job.data : undefined;
  });
}

function expectEpError(err, status) {
  const e = err && err.errors && err.errors[0];
  assert.ok(e, `an Elastic Path error document, got ${JSON.stringify(err)}`);
  assert.equal(String(e.status), String(status));
}

test('import, export and download, duplicate, build, price import, list/get/errors', async () => {
  const EP = client();
  const run = Date.now();

  // Products through the SDK's CRUD, then an import that updates one and creates another.
  const shirt = await EP.PCM.Create({
    attributes: { name: 'Shirt', description: 'e2e', slug: `shirt-${run}`, sku: `e2e-shirt-${run}`,
      status: 'live', commodity_type: 'physical' },
  });
  assert.equal(shirt.data.type, 'product');
  // A row updates the product its `id` names (A.8); rows without one create.
  const csv = 'id,name,description,slug,status,commodity_type,sku\n'
    + `${shirt.data.id},Shirt v2,e2e,shirt-${run},Live,physical,e2e-shirt-${run}\n`
    + `,Hat,e2e,hat-${run},draft,physical,e2e-hat-${run}\n`
    + ',Bad,e2e,not a slug,live,physical,\n';
  const imported = await upload(EP, 'products/import', multipart('products.csv', csv));
  assert.equal(imported.data.type, 'pim-job');
  assert.equal(imported.data.attributes.type, 'product-import');
  const importJob = await finished(EP, imported.data.id);
  assert.equal(importJob.attributes.status, 'failed', 'one bad row fails the job, good rows kept');
  assert.ok(importJob.meta.x_request_id);
  const errors = await EP.PCM.Jobs.GetJobErrors(importJob.id);
  // The bad row's error, and the job's own summary of why it failed.
  assert.ok(errors.data.length >= 1);
  assert.ok(errors.data.every((e) => e.type === 'pim-job-error'));
  assert.ok(errors.data.some((e) => /slug/.test(e.attributes.message)), JSON.stringify(errors.data));
  const renamed = await EP.PCM.Get(shirt.data.id);
  assert.equal(renamed.data.attributes.name, 'Shirt v2');

  // What the SDK's own ImportProducts sends from Node: JSON. A 4xx, never a 5xx.
  await assert.rejects(EP.PCM.ImportProducts({}), (err) => {
    expectEpError(err, 400);
    return true;
  });

  // Export with a filter; the file is fetched with a plain GET and no token.
  const exported = await EP.PCM.ExportProducts({ eq: { sku: `e2e-hat-${run}` } });
  assert.equal(exported.data.attributes.type, 'product-export');
  assert.equal(exported.data.meta.file_locations, null);
  const exportJob = await finished(EP, exported.data.id);
  assert.equal(exportJob.attributes.status, 'success');
  assert.equal(exportJob.meta.filter, `eq(sku,e2e-hat-${run})`);
  assert.equal(exportJob.meta.file_locations.length, 1);
  const file = await fetch(exportJob.meta.file_locations[0]);
  assert.equal(file.status, 200);
  const text = await file.text();
  assert.match(text, new RegExp(`e2e-hat-${run}`));
  assert.doesNotMatch(text, new RegExp(`e2e-shirt-${run}`));

  // Hierarchy duplicate.
  const hierarchy = await EP.Hierarchies.Create({ attributes: { name: `Clothes ${run}` } });
  const dup = await EP.Hierarchies.Duplicate(hierarchy.data.id, {
    type: 'hierarchy', attributes: { name: `Clothes copy ${run}`, include_products: true },
  });
  assert.equal(dup.data.attributes.type, 'hierarchy-duplicate');
  const dupJob = await finished(EP, dup.data.id);
  assert.equal(dupJob.attributes.status, 'success');
  assert.equal(dupJob.meta.copied_from, hierarchy.data.id);
  assert.ok(dupJob.meta.hierarchy_id);

  // Child products: the SDK's build call (no variations yet: nothing to build, still a job).
  const build = await EP.PCM.BuildChildProducts(shirt.data.id);
  assert.equal(build.data.attributes.type, 'child-products');
  assert.equal((await finished(EP, build.data.id)).attributes.status, 'success');

  // Price import: a pretty-printed stream of JSON values.
  const prices = JSON.stringify({ data: { type: 'pricebook', attributes: { name: `Retail ${run}`, external_ref: `retail-${run}` } } }, null, 2)
    + '\n' + JSON.stringify({ data: { type: 'product-price', pricebook_external_ref: `retail-${run}`,
      attributes: { sku: `e2e-hat-${run}`, currencies: { USD: { amount: 1500, includes_tax: false } } } } }, null, 2);
  const priceJob = await upload(EP, 'pricebooks/import', multipart('prices.jsonl', prices, { file_compression: 'none' }));
  assert.equal(priceJob.data.attributes.type, 'price-import');
  assert.equal((await finished(EP, priceJob.data.id)).attributes.status, 'success');

  // Lists: newest first, paged, filtered.
  EP.PCM.Jobs.limit = undefined;
  const all = await EP.PCM.Jobs.Limit(2).All();
  assert.equal(all.data.length, 2);
  assert.ok(all.meta.results.total >= 5);
  assert.ok(all.links.next);
  EP.PCM.Jobs.limit = undefined;
  EP.PCM.Jobs.filter = undefined;
});

test('a job queued behind a running one can be cancelled; a finished one cannot (422)', async () => {
  const EP = client();
  const run = Date.now();
  // A large import keeps the store's queue busy while the export behind it waits.
  let csv = 'name,description,slug,status,commodity_type,sku\n';
  for (let i = 0; i < 20000; i++) csv += `P${i},d,q-${run}-${i},live,physical,q-${run}-${i}\n`;
  const big = await upload(EP, 'products/import', multipart('big.csv', csv));
  const queued = await EP.PCM.ExportProducts();
  const cancelled = await EP.PCM.Jobs.request.send(`jobs/${queued.data.id}/cancel`, 'POST', undefined, undefined, undefined, true, 'pcm');
  assert.equal(cancelled.data.attributes.status, 'cancelled');
  assert.equal(cancelled.data.attributes.started_at, null);

  const done = await finished(EP, big.data.id);
  assert.equal(done.attributes.status, 'success');
  await assert.rejects(
    EP.PCM.Jobs.request.send(`jobs/${big.data.id}/cancel`, 'POST', undefined, undefined, undefined, true, 'pcm'),
    (err) => {
      expectEpError(err, 422);
      return true;
    },
  );
});
