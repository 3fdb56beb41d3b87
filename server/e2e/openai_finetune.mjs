// Checks carryon's fine-tuning API with the official OpenAI Node SDK: file
// upload and listing, a fine-tuning job run to the end, its events and
// checkpoints, chat with the fine-tuned model, cancelling a job, and the
// SDK's errors for a malformed training file and an unknown job. Run by
// finetune_test.go with CARRYON_URL (the server) and CARRYON_MODEL (the
// base model's name) in the environment. Prints one line per check and
// exits with status 1 when any fails.
import OpenAI, { toFile } from 'openai';
import assert from 'node:assert/strict';

const client = new OpenAI({
  baseURL: `${process.env.CARRYON_URL}/v1`,
  apiKey: 'not-needed',
  maxRetries: 0,
  timeout: 120_000,
});
const model = process.env.CARRYON_MODEL;
const reply = 'The cat sat on the mat.';

function conversations(n, offset) {
  const lines = [];
  for (let i = 0; i < n; i++) {
    lines.push(JSON.stringify({
      messages: [
        { role: 'user', content: `Where is cat number ${i + offset}?` },
        { role: 'assistant', content: reply },
      ],
    }));
  }
  return lines.join('\n') + '\n';
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitJob(id, timeoutMs) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const job = await client.fineTuning.jobs.retrieve(id);
    if (['succeeded', 'failed', 'cancelled'].includes(job.status)) return job;
    if (Date.now() > end) throw new Error(`job ${id} still ${job.status} after ${timeoutMs} ms`);
    await sleep(200);
  }
}

const checks = [];
const check = (name, fn) => checks.push([name, fn]);
const state = {};

check('upload training and validation files', async () => {
  const train = await client.files.create({ file: await toFile(Buffer.from(conversations(40, 0)), 'train.jsonl'), purpose: 'fine-tune' });
  assert.equal(train.object, 'file');
  assert.match(train.id, /^file-/);
  assert.equal(train.purpose, 'fine-tune');
  assert.equal(train.filename, 'train.jsonl');
  assert.equal(train.bytes, Buffer.byteLength(conversations(40, 0)));
  const valid = await client.files.create({ file: await toFile(Buffer.from(conversations(6, 100)), 'valid.jsonl'), purpose: 'fine-tune' });
  state.train = train.id;
  state.valid = valid.id;
  const got = await client.files.retrieve(train.id);
  assert.equal(got.id, train.id);
  const ids = [];
  for await (const f of client.files.list()) ids.push(f.id);
  assert.ok(ids.includes(train.id) && ids.includes(valid.id), `listed ${ids}`);
  const content = await (await client.files.content(train.id)).text();
  assert.equal(content, conversations(40, 0));
});

check('a malformed training file is a BadRequestError naming the line', async () => {
  const bad = conversations(1, 0) + '{"messages": [{"role": "user", "content": "no answer"}]}\n';
  await assert.rejects(
    client.files.create({ file: await toFile(Buffer.from(bad), 'bad.jsonl'), purpose: 'fine-tune' }),
    (e) => e instanceof OpenAI.BadRequestError && e.status === 400 && /line 2: no assistant message/.test(e.message),
  );
});

check('a fine-tuning job runs to the end', async () => {
  const job = await client.fineTuning.jobs.create({
    model,
    training_file: state.train,
    validation_file: state.valid,
    suffix: 'cats',
    seed: 42,
    hyperparameters: { n_epochs: 'auto', batch_size: 8, learning_rate_multiplier: 3 },
    carryon: { steps: 60, layers: 1, dim: 64 },
  });
  assert.equal(job.object, 'fine_tuning.job');
  assert.match(job.id, /^ftjob-/);
  assert.equal(job.model, model);
  assert.equal(job.seed, 42);
  assert.ok(['validating_files', 'queued', 'running'].includes(job.status), job.status);
  const done = await waitJob(job.id, 240_000);
  assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
  assert.equal(done.fine_tuned_model, `ft:${model}:cats:${job.id.slice('ftjob-'.length, 'ftjob-'.length + 8)}`);
  assert.ok(done.trained_tokens > 0);
  assert.ok(done.finished_at >= done.created_at);
  assert.equal(done.hyperparameters.batch_size, 8);
  const c = done.carryon;
  console.log(`    validation loss: base ${c.base_valid_loss.toFixed(3)}, fine-tuned ${c.valid_loss.toFixed(3)}; train ${c.train_loss.toFixed(3)}`);
  assert.ok(c.valid_loss < c.base_valid_loss - 0.5, `valid loss ${c.valid_loss} vs base ${c.base_valid_loss}`);
  state.job = done;
});

check('events page newest first with metrics', async () => {
  const events = [];
  for await (const ev of client.fineTuning.jobs.listEvents(state.job.id, { limit: 5 })) events.push(ev);
  assert.ok(events.length > 5, `${events.length} events`);
  assert.equal(events[0].message, 'The job has successfully completed');
  assert.equal(new Set(events.map((e) => e.id)).size, events.length);
  const metrics = events.filter((e) => e.type === 'metrics');
  assert.ok(metrics.length >= 2);
  assert.equal(typeof metrics[metrics.length - 1].data.step, 'number');
  assert.equal(typeof metrics[metrics.length - 1].data.train_loss, 'number');
  assert.ok(metrics.some((e) => typeof e.data.valid_loss === 'number'));
  const ckpts = [];
  for await (const k of client.fineTuning.jobs.checkpoints.list(state.job.id)) ckpts.push(k);
  assert.equal(ckpts.length, 1);
  assert.equal(ckpts[0].fine_tuned_model_checkpoint, state.job.fine_tuned_model);
});

check('chat with the fine-tuned model', async () => {
  const name = state.job.fine_tuned_model;
  const models = [];
  for await (const m of client.models.list()) models.push(m.id);
  assert.ok(models.includes(name), `models ${models}`);
  const r = await client.chat.completions.create({
    model: name, messages: [{ role: 'user', content: 'Where is cat number 7?' }], max_tokens: 12, temperature: 0,
  });
  assert.equal(r.model, name);
  const text = r.choices[0].message.content;
  console.log(`    reply: ${JSON.stringify(text)}`);
  assert.ok(text.trim().startsWith('The cat'), text);
});

check('cancel a job', async () => {
  const job = await client.fineTuning.jobs.create({ model, training_file: state.train, carryon: { steps: 100000 } });
  for (let i = 0; i < 600; i++) {
    const j = await client.fineTuning.jobs.retrieve(job.id);
    if (j.status === 'running') break;
    await sleep(100);
  }
  const c = await client.fineTuning.jobs.cancel(job.id);
  assert.equal(c.id, job.id);
  const done = await waitJob(job.id, 30_000);
  assert.equal(done.status, 'cancelled');
  assert.equal(done.fine_tuned_model, null);
  const jobs = [];
  for await (const j of client.fineTuning.jobs.list({ limit: 1 })) jobs.push(j.id);
  assert.deepEqual(jobs, [job.id, state.job.id]);
});

check('an unknown job is a NotFoundError', async () => {
  await assert.rejects(client.fineTuning.jobs.retrieve('ftjob-000000000000000000000000'),
    (e) => e instanceof OpenAI.NotFoundError && e.status === 404);
});

let failed = 0;
for (const [name, fn] of checks) {
  try {
    await fn();
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e?.stack ?? e}`);
  }
}
process.exit(failed ? 1 : 0);
