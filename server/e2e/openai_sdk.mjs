// Checks carryon's OpenAI-compatible API with the official OpenAI Node SDK.
// Run by openai_sdk_test.go with CARRYON_URL (the server), CARRYON_MODEL
// (stories260K's name there) and CARRYON_GREEDY (its greedy continuation of
// "Once upon a time") in the environment. Prints one line per check and
// exits with status 1 when any fails.
import OpenAI from 'openai';
import assert from 'node:assert/strict';

const client = new OpenAI({
  baseURL: `${process.env.CARRYON_URL}/v1`,
  apiKey: 'not-needed',
  maxRetries: 0,
  timeout: 30_000,
});
const model = process.env.CARRYON_MODEL;
const greedy = process.env.CARRYON_GREEDY;
const story = [{ role: 'user', content: 'Once upon a time' }];

const checks = [];
const check = (name, fn) => checks.push([name, fn]);

check('chat completion', async () => {
  const r = await client.chat.completions.create({ model, messages: story, max_tokens: 12, temperature: 0 });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.model, model);
  assert.match(r.id, /^chatcmpl-/);
  assert.equal(r.choices.length, 1);
  const c = r.choices[0];
  assert.equal(c.index, 0);
  assert.equal(c.message.role, 'assistant');
  assert.equal(typeof c.message.content, 'string');
  assert.ok(['stop', 'length'].includes(c.finish_reason));
  assert.equal(c.logprobs, null);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  assert.ok(r.usage.completion_tokens <= 12);
});

check('chat stream with usage equals the non-streaming answer', async () => {
  const params = { model, messages: story, max_tokens: 16, temperature: 0 };
  const whole = await client.chat.completions.create(params);
  const stream = await client.chat.completions.create({ ...params, stream: true, stream_options: { include_usage: true } });
  let text = '';
  let finish = null;
  let usage = null;
  let role = null;
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'chat.completion.chunk');
    if (chunk.choices.length === 0) {
      usage = chunk.usage;
      continue;
    }
    assert.equal(chunk.usage, null);
    const c = chunk.choices[0];
    role ??= c.delta.role;
    text += c.delta.content ?? '';
    finish = c.finish_reason ?? finish;
  }
  assert.equal(role, 'assistant');
  assert.equal(text, whole.choices[0].message.content);
  assert.equal(finish, whole.choices[0].finish_reason);
  assert.deepEqual(
    [usage.prompt_tokens, usage.completion_tokens, usage.total_tokens],
    [whole.usage.prompt_tokens, whole.usage.completion_tokens, whole.usage.total_tokens],
  );
});

check('chat stream helper accumulates the completion', async () => {
  const runner = client.chat.completions.stream({ model, messages: story, max_tokens: 10, temperature: 0 });
  const final = await runner.finalChatCompletion();
  const whole = await client.chat.completions.create({ model, messages: story, max_tokens: 10, temperature: 0 });
  assert.equal(final.choices[0].message.content, whole.choices[0].message.content);
  assert.equal(final.choices[0].finish_reason, whole.choices[0].finish_reason);
});

check('chat n=2', async () => {
  const r = await client.chat.completions.create({ model, messages: story, max_tokens: 10, n: 2, temperature: 0 });
  assert.deepEqual(r.choices.map((c) => c.index), [0, 1]);
  assert.equal(r.choices[0].message.content, r.choices[1].message.content, 'greedy choices agree');
  const s = await client.chat.completions.create({ model, messages: story, max_tokens: 10, n: 2, temperature: 1, seed: 3, stream: true });
  const texts = ['', ''];
  const finished = [false, false];
  for await (const chunk of s) {
    for (const c of chunk.choices) {
      texts[c.index] += c.delta.content ?? '';
      if (c.finish_reason) finished[c.index] = true;
    }
  }
  assert.deepEqual(finished, [true, true]);
  const again = await client.chat.completions.create({ model, messages: story, max_tokens: 10, n: 2, temperature: 1, seed: 3 });
  assert.deepEqual(texts, again.choices.map((c) => c.message.content), 'the same seed gives the same choices');
});

check('chat logprobs', async () => {
  const r = await client.chat.completions.create({ model, messages: story, max_tokens: 6, temperature: 0, logprobs: true, top_logprobs: 3 });
  const lp = r.choices[0].logprobs.content;
  assert.equal(lp.length, r.usage.completion_tokens);
  assert.equal(lp.map((t) => t.token).join(''), r.choices[0].message.content);
  for (const t of lp) {
    assert.ok(t.logprob <= 0);
    assert.equal(t.top_logprobs.length, 3);
    assert.equal(t.top_logprobs[0].token, t.token, 'greedy picks the most likely token');
    assert.deepEqual(t.bytes, [...Buffer.from(t.token)]);
  }
  const s = await client.chat.completions.create({ model, messages: story, max_tokens: 6, temperature: 0, logprobs: true, top_logprobs: 3, stream: true });
  const streamed = [];
  for await (const chunk of s) {
    for (const c of chunk.choices) streamed.push(...(c.logprobs?.content ?? []));
  }
  assert.deepEqual(streamed.map((t) => t.token), lp.map((t) => t.token));
});

check('text completion, greedy', async () => {
  const r = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 40, temperature: 0 });
  assert.equal(r.object, 'text_completion');
  assert.equal(r.choices[0].text, greedy);
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.deepEqual([r.usage.prompt_tokens, r.usage.completion_tokens], [5, 40]);
});

check('text completion stream, n=2, logprobs, usage', async () => {
  const s = await client.completions.create({
    model, prompt: 'Once upon a time', max_tokens: 40, temperature: 0, n: 2, logprobs: 2,
    stream: true, stream_options: { include_usage: true },
  });
  const texts = ['', ''];
  const tokens = [[], []];
  let usage = null;
  for await (const chunk of s) {
    if (chunk.choices.length === 0) {
      usage = chunk.usage;
      continue;
    }
    for (const c of chunk.choices) {
      texts[c.index] += c.text;
      tokens[c.index].push(...(c.logprobs?.tokens ?? []));
    }
  }
  assert.deepEqual(texts, [greedy, greedy]);
  assert.deepEqual(tokens.map((t) => t.join('')), [greedy, greedy]);
  assert.equal(usage.completion_tokens, 80);
});

check('text completion stop', async () => {
  const r = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 40, temperature: 0, stop: ['Lily'] });
  assert.equal(r.choices[0].text, ', there was a little girl named ');
  assert.equal(r.choices[0].finish_reason, 'stop');
});

check('embeddings (the SDK asks for base64 and decodes it)', async () => {
  const r = await client.embeddings.create({ model, input: ['Once upon a time', 'The cat'] });
  assert.equal(r.data.length, 2);
  const floats = await client.embeddings.create({ model, input: 'The cat', encoding_format: 'float' });
  assert.equal(r.data[1].embedding.length, 64);
  r.data[1].embedding.forEach((x, i) => assert.ok(Math.abs(x - floats.data[0].embedding[i]) < 1e-6));
  const norm = Math.hypot(...r.data[0].embedding);
  assert.ok(Math.abs(norm - 1) < 1e-4, `norm ${norm}`);
});

check('models', async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.deepEqual(ids, [model]);
  const m = await client.models.retrieve(model);
  assert.equal(m.id, model);
});

check('errors: unknown model is a NotFoundError with code model_not_found', async () => {
  await assert.rejects(client.chat.completions.create({ model: 'gpt-nothing', messages: story }), (e) => {
    assert.ok(e instanceof OpenAI.NotFoundError, e.constructor.name);
    assert.equal(e.status, 404);
    assert.equal(e.code, 'model_not_found');
    assert.equal(e.param, 'model');
    return true;
  });
});

check('errors: a wrong type is a BadRequestError naming the parameter', async () => {
  await assert.rejects(client.chat.completions.create({ model, messages: story, temperature: 'hot' }), (e) => {
    assert.ok(e instanceof OpenAI.BadRequestError, e.constructor.name);
    assert.equal(e.code, 'invalid_type');
    assert.equal(e.param, 'temperature');
    return true;
  });
});

check('errors: context length', async () => {
  const long = 'long story '.repeat(100);
  await assert.rejects(client.completions.create({ model, prompt: long }), (e) => {
    assert.ok(e instanceof OpenAI.BadRequestError);
    assert.equal(e.code, 'context_length_exceeded');
    return true;
  });
  await assert.rejects(client.chat.completions.create({ model, messages: [{ role: 'user', content: long }], stream: true }), (e) => {
    assert.equal(e.status, 400);
    assert.equal(e.code, 'context_length_exceeded');
    return true;
  });
});

let failed = 0;
for (const [name, fn] of checks) {
  try {
    await fn();
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}\n${e.stack ?? e}`);
  }
}
console.log(`${checks.length - failed}/${checks.length} checks passed`);
process.exit(failed ? 1 : 0);
