// Elastic Path Promotions jobs through the real @elasticpath/js-sdk (shared/spec/sdk-clients.md
// §1.6), against a jobline started by run.sh. It checks what a client of the vendor API relies
// on: the SDK's own calls work unchanged, statuses and errors read as Elastic Path documents
// them (vendor-apis.md Part B), and the export link downloads with a plain GET and no token.
'use strict';

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { client, poll } = require('./client');

const CANCEL_REFUSED = 'Only pending or processing jobs can be cancelled.';

/** The SDK keeps Filter/Limit/Offset on the shared endpoint object and `PromotionJobs` never
 * clears them (sdk-clients.md §1.6), so every list call resets them by hand first. */
function promotionJobs(EP, promotionId, filter) {
  EP.Promotions.filter = undefined;
  EP.Promotions.limit = undefined;
  EP.Promotions.offset = undefined;
  if (filter) EP.Promotions.Filter(filter);
  const list = EP.Promotions.PromotionJobs(promotionId);
  EP.Promotions.filter = undefined;
  return list;
}

async function jobStatus(EP, promotionId, jobId, wanted) {
  return poll(`job ${jobId} ${wanted.join('|')}`, async () => {
    const list = await promotionJobs(EP, promotionId);
    const job = list.data.find((j) => j.id === jobId);
    return job && wanted.includes(job.status) ? job : undefined;
  });
}

async function createPromotion(EP, maxCodes) {
  const promotion = await EP.Promotions.Create({
    name: 'jobline e2e',
    description: 'made by e2e/ep/promotions.test.js',
    promotion_type: 'fixed_discount',
    enabled: true,
    max_codes: maxCodes,
  });
  assert.equal(promotion.data.type, 'promotion');
  assert.equal(promotion.data.max_codes, maxCodes);
  return promotion.data.id;
}

test('generate codes, list jobs with a filter, export and download the CSV without a token', async () => {
  const EP = client();
  const pid = await createPromotion(EP, 1000);

  const created = await EP.Promotions.AddCodesJob(pid, {
    type: 'promotion_job',
    job_type: 'code_generate',
    name: 'e2e generate',
    parameters: { number_of_codes: 25, code_length: 8, code_prefix: 'e2e-', consume_unit: 'per_cart', max_uses_per_code: 1 },
  });
  assert.equal(created.data.type, 'promotion_job');
  assert.equal(created.data.promotion_id, pid);
  assert.equal(created.data.job_type, 'code_generate');
  assert.ok(['pending', 'processing', 'completed'].includes(created.data.status));
  const done = await jobStatus(EP, pid, created.data.id, ['completed']);
  assert.deepEqual(done.result, { generated: 25, deleted: null });
  assert.ok(done.meta.timestamps.created_at && done.meta.timestamps.updated_at);

  const exportJob = await EP.Promotions.AddCodesJob(pid, { type: 'promotion_job', job_type: 'code_export', name: 'e2e export' });
  await jobStatus(EP, pid, exportJob.data.id, ['completed']);

  const exports = await promotionJobs(EP, pid, { eq: { job_type: 'code_export' } });
  assert.deepEqual(exports.data.map((j) => j.id), [exportJob.data.id]);
  const completed = await promotionJobs(EP, pid, { eq: { status: 'completed' } });
  assert.equal(completed.meta.results.total, 2);
  const all = await promotionJobs(EP, pid);
  assert.equal(all.data.length, 2, 'the filter did not stick');
  assert.equal(all.data[0].id, exportJob.data.id, 'newest first');

  const file = await EP.Promotions.GetCodeExportFile(pid, exportJob.data.id);
  assert.match(file.href, /^http:\/\/127\.0\.0\.1:\d+\/v2\/files\//);
  const csv = await fetch(file.href); // a plain GET, no Authorization header
  assert.equal(csv.status, 200);
  const lines = (await csv.text()).trim().split('\n');
  assert.equal(lines[0], 'code,uses,max_uses,consume_unit,created_at');
  assert.equal(lines.length, 26);
  for (const line of lines.slice(1)) {
    assert.match(line, /^e2e-[a-z0-9]{4}-[a-z0-9]{4},0,1,per_cart,\d{4}-/);
  }

  // The file of a generate job is refused in Elastic Path's error shape.
  await assert.rejects(EP.Promotions.GetCodeExportFile(pid, created.data.id), (err) => {
    assert.equal(String(err.errors[0].status), '422');
    return true;
  });
});

test('one job per promotion, and RulePromotions.CancelJob stops a running job and deletes its codes', async () => {
  const EP = client();
  const pid = await createPromotion(EP, 200000);
  const big = await EP.Promotions.AddCodesJob(pid, {
    type: 'promotion_job',
    job_type: 'code_generate',
    parameters: { number_of_codes: 200000 },
  });

  await assert.rejects(
    EP.Promotions.AddCodesJob(pid, { type: 'promotion_job', job_type: 'code_export' }),
    (err) => {
      assert.equal(String(err.errors[0].status), '400');
      assert.equal(err.errors[0].title, 'Too many jobs');
      return true;
    },
  );

  // Wait until it is writing codes, so the cancel meets a processing job.
  await poll('codes appear', async () => {
    EP.Promotions.filter = undefined;
    const codes = await EP.Promotions.Codes(pid);
    return codes.meta.results.total > 0 ? true : undefined;
  });
  const cancelled = await EP.RulePromotions.CancelJob(pid, big.data.id);
  assert.equal(cancelled.data.id, big.data.id);
  assert.ok(['cancelling', 'cancelled'].includes(cancelled.data.status), cancelled.data.status);
  const done = await jobStatus(EP, pid, big.data.id, ['cancelled', 'completed']);
  assert.equal(done.status, 'cancelled', 'a 200,000-code job is cancelled long before it ends');
  assert.equal(done.result.deleted, done.result.generated);
  const codes = await EP.Promotions.Codes(pid);
  assert.equal(codes.meta.results.total, 0);

  await assert.rejects(EP.RulePromotions.CancelJob(pid, big.data.id), (err) => {
    assert.equal(String(err.errors[0].status), '422');
    assert.equal(err.errors[0].detail, CANCEL_REFUSED);
    return true;
  });
});
