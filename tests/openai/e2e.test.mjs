// End to end: the official `openai` SDK (pinned in package.json) against a real
// `continuum serve` whose agents use the scripted mock model. Covers the
// Responses API (plain, streamed, background, chained across a restart,
// resumed streams, input items), the Conversations API (items, pagination,
// metadata, deletes), typed errors, and the agent's own tools as output items.
//
// One mock model and one Continuum server serve the whole file (each test uses
// its own agents and conversations); the restart test gets a server of its own.
// Run: tests/openai/run.sh (or `node --test tests/openai/*.test.mjs`).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  APIError, AuthenticationError, BadRequestError, ConflictError, NotFoundError, PermissionDeniedError,
} from 'openai';

import {
  BUILD_DIR,
  TEST_TIMEOUT_MS,
  TestWorld,
  binariesPresent,
  createAgent,
  nativeOk,
  nativeRequest,
  nativeSessionItems,
  openaiClient,
  waitUntil,
} from './harness.mjs';

const SKIP = binariesPresent() ? false : `binaries not built in ${BUILD_DIR}`;

// Long enough to arrive in several deltas: the mock streams ~8-character chunks.
const LONG_REPLY = 'The final answer is long enough to arrive in several pieces, one small delta at a time.';

// Mock model scripts (src/providers/script.h); an agent's model name picks one.
// {{turn}} is the number of user messages the model was shown, {{input}} the last one.
const SCRIPTS = {
  echo: { steps: [{ content: 'turn {{turn}}: {{input}}' }] },
  long: { steps: [{ content: LONG_REPLY }] },
  // Holds its reply back, so a stream opened right after the create is tailing live.
  slow_long: { steps: [{ content: LONG_REPLY, delay_ms: 1500 }] },
  // Never answers in time: a cancel lands while the model call is in flight.
  stall: { steps: [{ content: 'too late', delay_ms: 30_000 }] },
  echo_tool: {
    steps: [{ tool_calls: [{ name: 'echo', arguments: { q: '{{input}}' } }] }, { content: 'tool said {{tool_results}}' }],
  },
  client_tool: {
    steps: [
      { tool_calls: [{ name: 'get_weather', arguments: { city: '{{input}}' } }] },
      { content: 'weather: {{tool_results}}' },
    ],
  },
};

// The events of a streamed text reply, in order (deltas collapsed into one entry).
const TEXT_STREAM_TYPES = [
  'response.created',
  'response.in_progress',
  'response.output_item.added',
  'response.content_part.added',
  'response.output_text.delta',
  'response.output_text.done',
  'response.content_part.done',
  'response.output_item.done',
  'response.completed',
];
const UNFINISHED = ['queued', 'in_progress'];

let world;
let client;
let agentCount = 0;

before(async () => {
  if (SKIP) return;
  world = new TestWorld(SCRIPTS);
  await world.guard(() => world.start());
  client = openaiClient(world.server);
});

after(async () => {
  if (world) await world.close();
});

/** A test with a hang guard whose failure keeps the process logs. */
function e2e(name, fn, options = {}) {
  test(name, { timeout: TEST_TIMEOUT_MS, skip: SKIP, ...options }, () => world.guard(fn));
}

/** A new agent (on the shared server) using `script`; returns its name, the `model` to ask for. */
async function agent(script, options = {}) {
  agentCount += 1;
  const name = `${script.replaceAll('_', '-')}-${agentCount}`;
  await createAgent(world.server, world.mock, name, script, options);
  return name;
}

// --- reading responses and items ---------------------------------------------------

/** The text of a message item (or a native session message): its string content, or
 *  its text parts joined. */
function messageText(message) {
  if (typeof message.content === 'string') return message.content;
  return (message.content ?? []).map((part) => part.text ?? '').join('');
}

function roleAndText(items) {
  return items.map((item) => [item.role, messageText(item)]);
}

function assertUsage(usage) {
  assert.ok(usage, 'usage is reported');
  assert.ok(usage.input_tokens > 0, `input_tokens > 0: ${JSON.stringify(usage)}`);
  assert.ok(usage.output_tokens > 0, `output_tokens > 0: ${JSON.stringify(usage)}`);
  assert.equal(usage.total_tokens, usage.input_tokens + usage.output_tokens);
  assert.equal(typeof usage.input_tokens_details?.cached_tokens, 'number');
  assert.equal(typeof usage.output_tokens_details?.reasoning_tokens, 'number');
}

function assertCreatedAtSeconds(createdAt) {
  assert.ok(Number.isInteger(createdAt), `created_at is an integer: ${createdAt}`);
  // Unix seconds (not milliseconds): after 2020, before the year 2286.
  assert.ok(createdAt > 1_577_836_800 && createdAt < 10_000_000_000, `created_at in seconds: ${createdAt}`);
}

/** Asserts a finished response whose only output is one assistant message saying `text`. */
function assertCompletedWithText(response, model, text) {
  assert.equal(response.object, 'response');
  assert.equal(typeof response.id, 'string');
  assert.ok(response.id.length > 0);
  assert.equal(response.status, 'completed', JSON.stringify(response.error));
  assert.equal(response.error, null);
  assert.equal(response.model, model);
  assertCreatedAtSeconds(response.created_at);
  assert.equal(response.output.length, 1, JSON.stringify(response.output));
  const [message] = response.output;
  assert.equal(message.type, 'message');
  assert.equal(message.role, 'assistant');
  assert.equal(message.status, 'completed');
  assert.equal(typeof message.id, 'string');
  assert.equal(message.content.length, 1);
  assert.equal(message.content[0].type, 'output_text');
  assert.equal(message.content[0].text, text);
  assert.deepEqual(message.content[0].annotations, []);
  assert.equal(response.output_text, text);
  assertUsage(response.usage);
}

async function collect(stream) {
  const events = [];
  for await (const event of stream) events.push(event);
  return events;
}

function deltaText(events) {
  return events.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta).join('');
}

function assertStrictlyIncreasing(events) {
  for (const event of events) {
    assert.ok(Number.isSafeInteger(event.sequence_number) && event.sequence_number >= 0,
      `sequence_number of ${event.type}: ${event.sequence_number}`);
  }
  for (let i = 1; i < events.length; i += 1) {
    assert.ok(events[i].sequence_number > events[i - 1].sequence_number,
      `sequence_number must increase: ${events[i - 1].type}#${events[i - 1].sequence_number} then ` +
        `${events[i].type}#${events[i].sequence_number}`);
  }
}

/** Asserts `events` form the whole stream of a one-message reply saying `text`
 *  (`allowQueued`: a response.queued event may follow response.created). Returns
 *  the number of deltas. */
function assertTextStream(events, text, { allowQueued = false } = {}) {
  assertStrictlyIncreasing(events);
  const types = [];
  for (const event of events) {
    if (event.type === 'response.queued' && allowQueued) continue;
    if (event.type === 'response.output_text.delta' && types.at(-1) === event.type) continue;
    types.push(event.type);
  }
  assert.deepEqual(types, TEXT_STREAM_TYPES);
  const byType = (type) => events.filter((e) => e.type === type);
  const one = (type) => {
    const found = byType(type);
    assert.equal(found.length, 1, `one ${type}`);
    return found[0];
  };

  const responseId = events[0].response.id;
  for (const event of events.filter((e) => e.response)) {
    assert.equal(event.response.id, responseId, `${event.type} names the same response`);
    assert.equal(event.response.object, 'response');
  }
  assert.ok(UNFINISHED.includes(one('response.created').response.status));
  assert.equal(one('response.in_progress').response.status, 'in_progress');

  const added = one('response.output_item.added');
  assert.equal(added.output_index, 0);
  assert.equal(added.item.type, 'message');
  assert.equal(added.item.role, 'assistant');
  assert.equal(added.item.status, 'in_progress');
  assert.deepEqual(added.item.content, [], 'parts are added by content_part.added');
  const itemId = added.item.id;
  assert.equal(typeof itemId, 'string');

  const partAdded = one('response.content_part.added');
  assert.equal(partAdded.part.type, 'output_text');
  assert.equal(partAdded.part.text, '');
  // The content events name their item; output_item.done carries the item itself.
  for (const event of events.slice(events.indexOf(partAdded), events.indexOf(one('response.content_part.done')) + 1)) {
    assert.equal(event.item_id, itemId, `${event.type} names the message item`);
    assert.equal(event.output_index, 0, `${event.type} output_index`);
    assert.equal(event.content_index, 0, `${event.type} content_index`);
  }
  assert.equal(one('response.output_item.done').output_index, 0);
  for (const delta of byType('response.output_text.delta')) assert.equal(typeof delta.delta, 'string');

  assert.equal(deltaText(events), text, 'the deltas reassemble the reply');
  assert.equal(one('response.output_text.done').text, text);
  assert.equal(one('response.content_part.done').part.text, text);
  const itemDone = one('response.output_item.done').item;
  assert.equal(itemDone.id, itemId);
  assert.equal(itemDone.status, 'completed');
  assert.equal(messageText(itemDone), text);

  const final = one('response.completed').response;
  assert.equal(final.status, 'completed');
  assert.equal(final.output_text, text, 'the final response (as sent) carries output_text');
  assert.deepEqual(final.output.map((item) => item.id), [itemId]);
  assert.equal(messageText(final.output[0]), text);
  assertUsage(final.usage);
  return byType('response.output_text.delta').length;
}

/** Polls the response until it is no longer queued or in progress; returns it. */
async function settled(id) {
  let last = null;
  try {
    return await waitUntil(async () => {
      last = await client.responses.retrieve(id);
      return UNFINISHED.includes(last.status) ? null : last;
    }, { message: `response ${id} to finish` });
  } catch (error) {
    error.message += `; last seen: ${JSON.stringify(last)?.slice(0, 2000)}`;
    throw error;
  }
}

/** Asserts `promise` rejects with the SDK's `ErrorClass` (an APIError) and an error
 *  body of the documented shape; returns the error. */
async function expectApiError(promise, ErrorClass, status) {
  let caught = null;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  assert.ok(caught, `expected ${ErrorClass.name}, but the call succeeded`);
  assert.ok(caught instanceof ErrorClass, `expected ${ErrorClass.name}, got ${caught?.constructor?.name}: ${caught}`);
  assertErrorBody(caught, status);
  return caught;
}

function assertErrorBody(error, status) {
  assert.ok(error instanceof APIError);
  assert.equal(error.status, status);
  assert.ok(error.error && typeof error.error === 'object', `error body: ${JSON.stringify(error.error)}`);
  for (const key of ['type', 'code', 'message', 'param']) {
    assert.ok(key in error.error, `the error has "${key}": ${JSON.stringify(error.error)}`);
  }
  assert.equal(typeof error.error.type, 'string');
  assert.equal(typeof error.error.message, 'string');
  assert.ok(error.error.message.length > 0);
}

// --- Responses ---------------------------------------------------------------------

e2e('responses.create with a string input returns the scripted reply, usage and metadata', async () => {
  const model = await agent('echo');
  const response = await client.responses.create({ model, input: 'hello there', metadata: { case: 'string' } });
  assertCompletedWithText(response, model, 'turn 1: hello there');
  assert.deepEqual(response.metadata, { case: 'string' });
  assert.equal(response.previous_response_id, null);
  assert.equal(response.background, false);

  const again = await client.responses.retrieve(response.id);
  assertCompletedWithText(again, model, 'turn 1: hello there');
  assert.deepEqual(again.usage, response.usage);
  assert.deepEqual(again.output, response.output);

  // The SDK recomputes output_text from the output items; the server sends it too.
  const raw = await nativeRequest(world.server, 'GET', `/v1/responses/${response.id}`);
  assert.equal(raw.status, 200, raw.text);
  assert.equal(raw.body.output_text, 'turn 1: hello there');
});

e2e('responses.create with an item list: the model sees every message; input_items lists them', async () => {
  const model = await agent('echo');
  const response = await client.responses.create({
    model,
    input: [
      { type: 'message', role: 'user', content: 'first question' },
      { role: 'assistant', content: [{ type: 'output_text', text: 'first answer' }] },
      { role: 'developer', content: 'Answer briefly.' },
      { role: 'user', content: [{ type: 'input_text', text: 'second question' }] },
    ],
  });
  assertCompletedWithText(response, model, 'turn 2: second question'); // both user messages reached the model

  const page = await client.responses.inputItems.list(response.id, { order: 'asc' });
  assert.equal(page.has_more, false);
  const conversational = page.data.filter((item) => item.role === 'user' || item.role === 'assistant');
  assert.deepEqual(roleAndText(conversational),
    [['user', 'first question'], ['assistant', 'first answer'], ['user', 'second question']]);
  for (const item of page.data) {
    assert.equal(item.type, 'message');
    assert.equal(typeof item.id, 'string');
  }
  assert.equal(new Set(page.data.map((item) => item.id)).size, page.data.length, 'item ids are distinct');
  // The page object keeps the body as sent (first_id/last_id are not copied onto it).
  assert.equal(page.body.object, 'list');
  assert.equal(page.body.first_id, page.data[0].id);
  assert.equal(page.body.last_id, page.data.at(-1).id);

  const desc = await client.responses.inputItems.list(response.id, { order: 'desc' });
  assert.deepEqual(desc.data.map((item) => item.id), page.data.map((item) => item.id).reverse());

  const onePage = await client.responses.inputItems.list(response.id, { order: 'asc', limit: 1 });
  assert.equal(onePage.data.length, 1);
  assert.equal(onePage.has_more, page.data.length > 1);
  const walked = [];
  for await (const item of client.responses.inputItems.list(response.id, { order: 'asc', limit: 1 })) {
    walked.push(item.id);
  }
  assert.deepEqual(walked, page.data.map((item) => item.id), 'limit 1 and `after` walk the same items');
});

e2e('responses.create with stream: true sends every event in order and the text reassembles', async () => {
  const model = await agent('long');
  const events = await collect(await client.responses.create({ model, input: 'go', stream: true }));
  const deltas = assertTextStream(events, LONG_REPLY);
  assert.ok(deltas >= 2, `the reply arrives in several deltas (got ${deltas})`);

  const id = events[0].response.id;
  const stored = await client.responses.retrieve(id);
  assertCompletedWithText(stored, model, LONG_REPLY);
  assert.equal(stored.output[0].id, events.find((e) => e.type === 'response.output_item.added').item.id);
});

e2e("the SDK's responses.stream() helper accepts the event stream and builds the final response", async () => {
  const model = await agent('long');
  const stream = client.responses.stream({ model, input: 'go' });
  let deltas = '';
  stream.on('response.output_text.delta', (event) => {
    deltas += event.delta;
  });
  const final = await stream.finalResponse();
  assert.equal(deltas, LONG_REPLY);
  assertCompletedWithText(final, model, LONG_REPLY);
});

e2e('previous_response_id continues the conversation across a server restart', async () => {
  // A server of its own, so restarting it disturbs no other test.
  const server = await world.newServer('restarted');
  try {
    await createAgent(server, world.mock, 'chatty', 'echo');
    const first = await openaiClient(server).responses.create({ model: 'chatty', input: 'hello' });
    assertCompletedWithText(first, 'chatty', 'turn 1: hello');

    assert.equal(await server.restart(), 0, 'SIGTERM is a clean shutdown');
    const restarted = openaiClient(server);

    const stored = await restarted.responses.retrieve(first.id);
    assertCompletedWithText(stored, 'chatty', 'turn 1: hello');

    const second = await restarted.responses.create({ model: 'chatty', previous_response_id: first.id, input: 'again' });
    assertCompletedWithText(second, 'chatty', 'turn 2: again'); // the model saw turn 1
    assert.equal(second.previous_response_id, first.id);

    const sessionId = second.conversation?.id ?? first.conversation?.id;
    if (sessionId) {
      if (first.conversation && second.conversation) assert.equal(second.conversation.id, first.conversation.id);
      const items = await nativeSessionItems(server, sessionId);
      assert.deepEqual(items.map((item) => [item.message.role, messageText(item.message)]), [
        ['user', 'hello'], ['assistant', 'turn 1: hello'], ['user', 'again'], ['assistant', 'turn 2: again'],
      ]);
    }
  } finally {
    await server.stop();
  }
});

e2e('background: true returns at once; polling retrieve sees it complete', async () => {
  const model = await agent('slow_long');
  const started = await client.responses.create({ model, input: 'go', background: true });
  assert.ok(UNFINISHED.includes(started.status), `status right after create: ${started.status}`);
  assert.equal(started.background, true);
  const finished = await settled(started.id);
  assertCompletedWithText(finished, model, LONG_REPLY);
  assert.equal(finished.background, true);
});

e2e('responses.cancel stops a background response: its final status is cancelled', async () => {
  const model = await agent('stall');
  const started = await client.responses.create({ model, input: 'wait for me', background: true });
  assert.ok(UNFINISHED.includes(started.status), `status right after create: ${started.status}`);

  const cancelling = await client.responses.cancel(started.id);
  assert.equal(cancelling.id, started.id);
  assert.ok(['cancelled', ...UNFINISHED].includes(cancelling.status), `status from cancel: ${cancelling.status}`);

  const finished = await settled(started.id);
  assert.equal(finished.status, 'cancelled');
  assert.ok(!finished.output_text.includes('too late'), 'the model reply never arrived');
});

e2e('a stream read partway resumes with starting_after: nothing repeats, nothing is lost', async () => {
  const model = await agent('long');
  const first = [];
  for await (const event of await client.responses.create({ model, input: 'go', stream: true })) {
    first.push(event);
    if (event.type === 'response.output_text.delta') break; // disconnects
  }
  assert.equal(first.at(-1)?.type, 'response.output_text.delta', 'the stream got as far as a delta');
  const id = first[0].response.id;
  const lastSeen = first.at(-1).sequence_number;

  const resumed = await collect(await client.responses.retrieve(id, { stream: true, starting_after: lastSeen }));
  assert.ok(resumed.length > 0);
  for (const event of resumed) {
    assert.ok(event.sequence_number > lastSeen, `${event.type}#${event.sequence_number} is after ${lastSeen}`);
  }
  assertTextStream([...first, ...resumed], LONG_REPLY);
  assert.equal(deltaText(first) + deltaText(resumed), LONG_REPLY);

  // A replay from the start is the same stream (its text may come in other
  // deltas), and every other event keeps its sequence number.
  const replay = await collect(await client.responses.retrieve(id, { stream: true }));
  assertTextStream(replay, LONG_REPLY);
  const landmarks = (events) => events.filter((e) => e.type !== 'response.output_text.delta')
    .map((e) => [e.sequence_number, e.type]);
  assert.deepEqual(landmarks(replay), landmarks([...first, ...resumed]));
});

e2e('a background response can be streamed while it runs (journal replay, then live events)', async () => {
  const model = await agent('slow_long');
  const started = await client.responses.create({ model, input: 'go', background: true });
  const events = await collect(await client.responses.retrieve(started.id, { stream: true }));
  assertTextStream(events, LONG_REPLY, { allowQueued: true });
  assert.equal(events[0].response.id, started.id);
});

e2e("the SDK's responses.stream({response_id, starting_after}) helper resumes a finished response", async () => {
  const model = await agent('long');
  const full = await collect(await client.responses.create({ model, input: 'go', stream: true }));
  const firstDelta = full.find((e) => e.type === 'response.output_text.delta');
  const stream = client.responses.stream({ response_id: full[0].response.id, starting_after: firstDelta.sequence_number });
  const seen = [];
  stream.on('event', (event) => seen.push(event));
  const final = await stream.finalResponse();
  assertCompletedWithText(final, model, LONG_REPLY);
  assert.ok(seen.length > 0);
  assert.ok(seen.every((e) => e.sequence_number > firstDelta.sequence_number), 'only events after starting_after');
  // The helper replays the whole stream (it does not send starting_after) and drops
  // events numbered up to starting_after itself: the text after the first delta
  // must come exactly once, so a replay must number its deltas as the live stream did.
  assert.equal(firstDelta.delta + deltaText(seen), LONG_REPLY, 'no text repeated or lost');
});

// --- Conversations -----------------------------------------------------------------

e2e('a conversation: create with items, add items, respond within it, read it back (SDK and native API)', async () => {
  const model = await agent('echo');
  const conversation = await client.conversations.create({
    items: [{ type: 'message', role: 'user', content: 'my colour is blue' }],
    metadata: { topic: 'colours' },
  });
  assert.match(conversation.id, /^sess_/);
  assert.equal(conversation.object, 'conversation');
  assertCreatedAtSeconds(conversation.created_at);
  assert.deepEqual(conversation.metadata, { topic: 'colours' });

  const added = await client.conversations.items.create(conversation.id, {
    items: [{ type: 'message', role: 'user', content: [{ type: 'input_text', text: 'my number is 7' }] }],
  });
  assert.equal(added.object, 'list');
  assert.equal(added.data.length, 1);
  assert.equal(added.data[0].type, 'message');
  assert.equal(typeof added.data[0].id, 'string');
  assert.deepEqual(roleAndText(added.data), [['user', 'my number is 7']]);

  const reply = await client.responses.create({ model, conversation: conversation.id, input: 'what do you remember?' });
  assertCompletedWithText(reply, model, 'turn 3: what do you remember?'); // saw both earlier items
  assert.equal(reply.conversation?.id, conversation.id);

  const next = await client.responses.create({ model, conversation: { id: conversation.id }, input: 'and now?' });
  assertCompletedWithText(next, model, 'turn 4: and now?');
  assert.equal(next.conversation?.id, conversation.id);

  const expected = [
    ['user', 'my colour is blue'], ['user', 'my number is 7'],
    ['user', 'what do you remember?'], ['assistant', 'turn 3: what do you remember?'],
    ['user', 'and now?'], ['assistant', 'turn 4: and now?'],
  ];
  const items = (await client.conversations.items.list(conversation.id, { order: 'asc', limit: 100 })).data;
  assert.deepEqual(roleAndText(items), expected);
  assert.equal(new Set(items.map((item) => item.id)).size, items.length, 'item ids are distinct');
  assert.equal(items[1].id, added.data[0].id, 'the added item keeps its id');

  const one = await client.conversations.items.retrieve(items[3].id, { conversation_id: conversation.id });
  assert.equal(one.id, items[3].id);
  assert.deepEqual(roleAndText([one]), [expected[3]]);

  const native = await nativeSessionItems(world.server, conversation.id);
  assert.deepEqual(native.map((item) => [item.message.role, messageText(item.message)]), expected,
    'the native API sees the same session');
});

e2e('conversation items paginate: newest first by default, limit, after, has_more, auto-pagination', async () => {
  const words = ['one', 'two', 'three', 'four', 'five'];
  const conversation = await client.conversations.create({
    items: words.map((word) => ({ type: 'message', role: 'user', content: word })),
  });
  const id = conversation.id;
  const texts = (page) => page.data.map(messageText);

  const first = await client.conversations.items.list(id, { limit: 2 });
  assert.deepEqual(texts(first), ['five', 'four']);
  assert.equal(first.has_more, true);
  assert.equal(first.last_id, first.data[1].id, 'the cursor is the last item id');

  const second = await client.conversations.items.list(id, { limit: 2, after: first.last_id });
  assert.deepEqual(texts(second), ['three', 'two']);
  assert.equal(second.has_more, true);

  const third = await client.conversations.items.list(id, { limit: 2, after: second.last_id });
  assert.deepEqual(texts(third), ['one']);
  assert.equal(third.has_more, false);
  assert.equal(third.hasNextPage(), false);

  const ascending = await client.conversations.items.list(id, { limit: 2, order: 'asc' });
  assert.deepEqual(texts(ascending), ['one', 'two']);
  assert.equal(ascending.has_more, true);
  const next = await ascending.getNextPage();
  assert.deepEqual(texts(next), ['three', 'four']);

  const walked = [];
  for await (const item of client.conversations.items.list(id, { limit: 2, order: 'asc' })) walked.push(messageText(item));
  assert.deepEqual(walked, words);
});

e2e('a conversation: update metadata, delete an item, delete the conversation', async () => {
  const conversation = await client.conversations.create({
    items: [
      { type: 'message', role: 'user', content: 'keep me' },
      { type: 'message', role: 'user', content: 'delete me' },
    ],
    metadata: { a: '1' },
  });
  const id = conversation.id;
  assert.deepEqual((await client.conversations.retrieve(id)).metadata, { a: '1' });

  const updated = await client.conversations.update(id, { metadata: { a: '2', b: '3' } });
  assert.equal(updated.id, id);
  assert.deepEqual(updated.metadata, { a: '2', b: '3' });
  assert.deepEqual((await client.conversations.retrieve(id)).metadata, { a: '2', b: '3' });

  const items = (await client.conversations.items.list(id, { order: 'asc' })).data;
  const doomed = items.find((item) => messageText(item) === 'delete me');
  assert.ok(doomed, JSON.stringify(items));
  const afterDelete = await client.conversations.items.delete(doomed.id, { conversation_id: id });
  assert.equal(afterDelete.id, id, 'deleting an item returns the conversation');
  assert.equal(afterDelete.object, 'conversation');
  assert.deepEqual((await client.conversations.items.list(id, { order: 'asc' })).data.map(messageText), ['keep me']);
  await expectApiError(client.conversations.items.retrieve(doomed.id, { conversation_id: id }), NotFoundError, 404);

  const deleted = await client.conversations.delete(id);
  assert.deepEqual({ id: deleted.id, object: deleted.object, deleted: deleted.deleted },
    { id, object: 'conversation.deleted', deleted: true });
  await expectApiError(client.conversations.retrieve(id), NotFoundError, 404);
  await expectApiError(client.conversations.items.list(id), NotFoundError, 404);
});

// --- Tools -------------------------------------------------------------------------

e2e("the agent's own tools appear as tool_call output items before the reply", async () => {
  const model = await agent('echo_tool', {
    tools: [{
      type: 'builtin', name: 'echo', description: 'returns its arguments',
      parameters: { type: 'object', properties: { q: { type: 'string' } } },
    }],
  });
  const response = await client.responses.create({ model, input: 'ping' });
  assert.equal(response.status, 'completed', JSON.stringify(response.error));
  assert.deepEqual(response.output.map((item) => item.type), ['tool_call', 'message']);
  const [call, message] = response.output;
  assert.equal(call.name, 'echo');
  assert.equal(typeof call.id, 'string');
  assert.equal(typeof call.call_id, 'string');
  assert.equal(call.status, 'completed');
  assert.deepEqual(JSON.parse(call.arguments), { q: 'ping' });
  assert.deepEqual(JSON.parse(call.output), { q: 'ping' }, 'the builtin echo returns its arguments');
  assert.equal(messageText(message), `tool said ${call.output}`);
  assert.equal(response.output_text, `tool said ${call.output}`);
});

e2e('client function tools: a function_call ends the response; function_call_output continues it', async () => {
  const model = await agent('client_tool');
  const tools = [{
    type: 'function', name: 'get_weather', description: 'the weather in a city', strict: false,
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  }];
  const first = await client.responses.create({ model, input: 'Paris', tools });
  assert.equal(first.status, 'completed', JSON.stringify(first.error));
  const calls = first.output.filter((item) => item.type === 'function_call');
  assert.equal(calls.length, 1, JSON.stringify(first.output));
  assert.equal(calls[0].name, 'get_weather');
  assert.deepEqual(JSON.parse(calls[0].arguments), { city: 'Paris' });

  const second = await client.responses.create({
    model, tools, previous_response_id: first.id,
    input: [{ type: 'function_call_output', call_id: calls[0].call_id, output: 'sunny' }],
  });
  assertCompletedWithText(second, model, 'weather: sunny');
}, { timeout: 60_000 });

e2e('an approval required by policy surfaces as an mcp_approval_request item; an mcp_approval_response answers it', async () => {
  // Policy holds the builtin echo for a person when asked to echo 'hold me'.
  const policy = (await nativeOk(world.server, 'GET', '/v1/policy', undefined, [200])).document;
  if (!policy.statements.some((s) => s.id === 'openai-e2e-approvals')) {
    policy.statements.push({
      id: 'openai-e2e-approvals', effect: 'require_approval', principal: 'agent:*', action: 'tool:invoke',
      resource: 'tool:echo', when: "args.q == 'hold me'",
    });
    await nativeOk(world.server, 'PUT', '/v1/policy', { document: policy }, [200, 201]);
  }
  const model = await agent('echo_tool', {
    tools: [{ type: 'builtin', name: 'echo', parameters: { type: 'object', properties: { q: { type: 'string' } } } }],
  });
  const held = await client.responses.create({ model, input: 'hold me' });
  assert.equal(held.status, 'in_progress', 'the run waits for the decision');
  const requests = held.output.filter((item) => item.type === 'mcp_approval_request');
  assert.equal(requests.length, 1, JSON.stringify(held.output));
  assert.equal(requests[0].name, 'echo');
  assert.deepEqual(JSON.parse(requests[0].arguments), { q: 'hold me' });

  // Nobody decides their own request: the requester's answer is refused (403) ...
  const answer = [{ type: 'mcp_approval_response', approval_request_id: requests[0].id, approve: true }];
  await assert.rejects(client.responses.create({ model, previous_response_id: held.id, input: answer }),
    (error) => error instanceof PermissionDeniedError && error.status === 403);
  // ... a reviewer's continues the same response to its end.
  const reviewerKey = (await nativeOk(world.server, 'POST', '/v1/api-keys', { user: 'reviewer', roles: ['admin'] },
    [201])).token;
  const reviewer = openaiClient(world.server, { apiKey: reviewerKey });
  const done = await reviewer.responses.create({ model, previous_response_id: held.id, input: answer });
  assert.equal(done.id, held.id, 'answering continues the response that asked');
  assert.equal(done.status, 'completed', JSON.stringify(done.error));
  assert.deepEqual(done.output.map((item) => item.type), ['tool_call', 'mcp_approval_request', 'message']);
  assert.equal(done.output_text, `tool said ${done.output[0].output}`);
  const approval = await nativeOk(world.server, 'GET', `/v1/approvals/${requests[0].id}`, undefined, [200]);
  assert.equal(approval.status, 'approved');
  assert.equal(approval.decided_by, 'reviewer');

  // A second answer to a decided approval is a conflict.
  await assert.rejects(reviewer.responses.create({ model, previous_response_id: held.id, input: answer }),
    (error) => error instanceof ConflictError);
});

e2e('responses.delete removes a finished response (its conversation keeps its items); a limit makes one incomplete', async () => {
  const model = await agent('echo');
  const response = await client.responses.create({ model, input: 'short-lived' });
  const conversation = response.conversation.id;
  const itemsBefore = await nativeSessionItems(world.server, conversation);
  await client.responses.delete(response.id);
  await assert.rejects(client.responses.retrieve(response.id), (error) => error instanceof NotFoundError);
  await assert.rejects(client.responses.delete(response.id), (error) => error instanceof NotFoundError);
  assert.deepEqual(await nativeSessionItems(world.server, conversation), itemsBefore);

  // The agent allows one model step, the script wants a tool call first: stopped by its limit.
  const limited = await agent('echo_tool', {
    tools: [{ type: 'builtin', name: 'echo', parameters: { type: 'object', properties: { q: { type: 'string' } } } }],
    limits: { max_steps: 1 },
  });
  const stopped = await client.responses.create({ model: limited, input: 'loop' });
  assert.equal(stopped.status, 'incomplete', JSON.stringify(stopped));
  assert.deepEqual(stopped.incomplete_details, { reason: 'max_steps' });
});

// --- Errors ------------------------------------------------------------------------

e2e('bad requests raise BadRequestError (400) with the error body', async () => {
  const model = await agent('echo');
  const earlier = await client.responses.create({ model, input: 'hi' });
  const conversation = await client.conversations.create({});
  const both = await expectApiError(
    client.responses.create({ model, input: 'x', previous_response_id: earlier.id, conversation: conversation.id }),
    BadRequestError, 400);
  assert.equal(both.type, both.error.type, 'the SDK exposes the error type');

  await expectApiError(client.responses.create({ input: 'no model' }), BadRequestError, 400);
  await expectApiError(client.responses.create({ model, input: 42 }), BadRequestError, 400);
});

e2e('a wrong API key raises AuthenticationError (401)', async () => {
  const model = await agent('echo');
  const mine = await client.responses.create({ model, input: 'x' }); // the right key works
  const stranger = openaiClient(world.server, { apiKey: 'not-the-key' });
  await expectApiError(stranger.responses.create({ model, input: 'x' }), AuthenticationError, 401);
  await expectApiError(stranger.responses.retrieve(mine.id), AuthenticationError, 401);
  await expectApiError(stranger.conversations.create({}), AuthenticationError, 401);
});

e2e('unknown ids raise NotFoundError (404)', async () => {
  const model = await agent('echo');
  const known = await client.responses.create({ model, input: 'x' }); // the routes exist
  assert.equal((await client.responses.retrieve(known.id)).id, known.id);
  await expectApiError(client.responses.retrieve('resp_doesnotexist'), NotFoundError, 404);
  await expectApiError(client.responses.cancel('resp_doesnotexist'), NotFoundError, 404);
  await expectApiError(client.responses.inputItems.list('resp_doesnotexist'), NotFoundError, 404);
  await expectApiError(client.conversations.retrieve('sess_doesnotexist'), NotFoundError, 404);
  const conversation = await client.conversations.create({});
  await expectApiError(client.conversations.items.retrieve('item_doesnotexist', { conversation_id: conversation.id }),
    NotFoundError, 404);
});

e2e('an unknown model or previous_response_id raises a typed 404 or 400', async () => {
  const model = await agent('echo');
  assertCompletedWithText(await client.responses.create({ model, input: 'x' }), model, 'turn 1: x'); // the route exists
  for (const [what, request] of [
    ['unknown model', { model: 'no-such-agent', input: 'x' }],
    ['unknown previous_response_id', { model, input: 'x', previous_response_id: 'resp_doesnotexist' }],
  ]) {
    let caught = null;
    try {
      await client.responses.create(request);
    } catch (error) {
      caught = error;
    }
    assert.ok(caught, `${what}: expected an error`);
    assert.ok(caught instanceof NotFoundError || caught instanceof BadRequestError,
      `${what}: expected NotFoundError or BadRequestError, got ${caught?.constructor?.name}: ${caught}`);
    assertErrorBody(caught, caught instanceof NotFoundError ? 404 : 400);
  }
});
