// Opens a long chat stream with the OpenAI Node SDK, prints "streaming"
// after the first content chunk, and expects the server (which the Go test
// shuts down with a short deadline) to end the stream with an error event,
// which the SDK must raise as an APIError. Exits with status 1 otherwise.
import OpenAI from 'openai';

const client = new OpenAI({ baseURL: `${process.env.CARRYON_URL}/v1`, apiKey: 'not-needed', maxRetries: 0 });
const stream = await client.chat.completions.create({
  model: process.env.CARRYON_MODEL,
  messages: [{ role: 'user', content: 'hi' }],
  max_tokens: 3000,
  logit_bias: { 2: -100 },
  stream: true,
});
let announced = false;
try {
  for await (const chunk of stream) {
    if (!announced && chunk.choices[0]?.delta?.content) {
      announced = true;
      console.log('streaming');
    }
  }
  console.log('FAIL the stream ended without an error');
  process.exit(1);
} catch (e) {
  if (!(e instanceof OpenAI.APIError)) {
    console.log(`FAIL not an APIError: ${e.stack ?? e}`);
    process.exit(1);
  }
  console.log(`ok   APIError: ${e.message} (code ${e.error?.code ?? e.code})`);
}
