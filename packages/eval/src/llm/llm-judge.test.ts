// The llm judge against a real local HTTP server (node:http on 127.0.0.1, a free port).
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import { ConfigError } from '@quorum/core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isJudgeError } from '../judge.js';
import { judgeRegistry } from '../module.js';
import { type FakeLlmServer, startFakeLlmServer } from '../testing/fake-llm-server.js';
import { VerdictCache } from './cache.js';
import { type LlmJudgeOptions, llmJudge } from './llm-judge.js';
import { maskSecrets, secretForms } from './secrets.js';

const KEY = 'sk-test-SECRET-0123456789';
let server: FakeLlmServer;
const dirs: string[] = [];
const logs: string[] = [];

beforeAll(async () => {
  server = await startFakeLlmServer();
});
afterAll(async () => {
  await server.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
afterEach(() => {
  server.requests.length = 0;
  server.queue(); // nothing pending between tests
});

const tmp = (): string => {
  const d = mkdtempSync(path.join(tmpdir(), 'quorum-llm-'));
  dirs.push(d);
  return d;
};

const judge = (over: LlmJudgeOptions = {}) =>
  llmJudge(
    {
      baseUrl: server.url,
      model: 'judge-model',
      apiKey: KEY,
      timeoutMs: 2000,
      retries: 3,
      backoffMs: 1,
      ...over,
    },
    { env: {}, log: (m) => logs.push(m) },
  );

const item = { instruction: 'Name a fruit.', input: '', a: 'An apple is a fine fruit to name.', b: 'Pear.' };
const items = Array.from({ length: 8 }, (_, i) => ({
  instruction: `Question ${i}?`,
  a: `a long answer number ${i} with many words in it`,
  b: `short ${i}`,
}));

describe('llm judge: requests and verdicts', () => {
  it('asks an OpenAI-compatible endpoint and maps the verdict back to a/b with p', async () => {
    const j = judge();
    const v = await j.compare(item);
    expect(v).toEqual({ winner: 'a', p: expect.closeTo(0.8, 10) });
    expect(await j.compare({ ...item, a: item.b, b: item.a })).toEqual({
      winner: 'b',
      p: expect.closeTo(0.2, 10),
    });
    const req = server.requests[0]!;
    expect(req.url).toBe('/v1/chat/completions');
    expect(req.headers.authorization).toBe(`Bearer ${KEY}`);
    const body = JSON.parse(req.body) as {
      model: string;
      temperature: number;
      max_tokens: number;
      logprobs: boolean;
      messages: { content: string }[];
    };
    expect(body).toMatchObject({ model: 'judge-model', temperature: 0, max_tokens: 1, logprobs: true });
    expect(body.messages[1]!.content).toContain('"instruction": """Name a fruit."""');
    // (b, a) is the same prompt as (a, b): served from the cache, one request in all
    expect(server.requests).toHaveLength(1);
  });

  it('randomises which answer is shown first, per pair, with a seed', async () => {
    const j = judge({ seed: 3 });
    const firsts: boolean[] = [];
    for (const it of items) {
      expect((await j.compare(it)).winner).toBe('a');
      const prompt = (JSON.parse(server.requests.at(-1)!.body) as { messages: { content: string }[] })
        .messages[1]!.content;
      firsts.push(prompt.indexOf(it.a) < prompt.indexOf(it.b));
    }
    expect(firsts).toContain(true);
    expect(firsts).toContain(false);
    // the same seed gives the same orders
    server.requests.length = 0;
    const again = judge({ seed: 3 });
    for (const [i, it] of items.entries()) {
      await again.compare(it);
      const prompt = (JSON.parse(server.requests.at(-1)!.body) as { messages: { content: string }[] })
        .messages[1]!.content;
      expect(prompt.indexOf(it.a) < prompt.indexOf(it.b)).toBe(firsts[i]);
    }
  });

  it('grades single answers with the MT-Bench prompts ([[rating]])', async () => {
    const j = judge();
    const answer = 'x'.repeat(100); // the fake rates 1 + ⌊100 / 20⌋ = 6
    expect(await j.score({ instruction: 'Write a poem.', answer })).toBe(6);
    const sent = JSON.parse(server.requests[0]!.body) as { messages: { role: string; content: string }[] };
    expect(sent.messages[1]!.content).toContain('[Question]\nWrite a poem.');
    expect(
      await j.score({
        instruction: 'Shorter now.',
        answer: 'y'.repeat(40),
        history: [{ question: 'Write a poem.', answer }],
        category: 'math',
        references: ['r1', 'r2'],
      }),
    ).toBe(3);
    const turn2 = JSON.parse(server.requests[1]!.body) as { messages: { content: string }[] };
    expect(turn2.messages[1]!.content).toContain('### Reference answer:\nr2');
    expect(turn2.messages[1]!.content).toContain('### User:\nShorter now.');
  });

  it('takes base URL, model and key from QUORUM_JUDGE_* when options are unset', async () => {
    const j = llmJudge(
      { backoffMs: 1 },
      {
        env: {
          QUORUM_JUDGE_BASE_URL: server.url,
          QUORUM_JUDGE_MODEL: 'env-model',
          QUORUM_JUDGE_API_KEY: KEY,
        },
      },
    );
    await j.compare(item);
    expect(server.requests[0]!.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(JSON.parse(server.requests[0]!.body).model).toBe('env-model');
    expect(() => llmJudge({}, { env: {} })).toThrow(/QUORUM_JUDGE_BASE_URL/);
    expect(() => llmJudge({}, { env: {} })).toThrow(
      expect.objectContaining({ hint: expect.stringContaining('OPENAI_BASE_URL') }),
    );
    expect(() => llmJudge({ baseUrl: server.url }, { env: {} })).toThrow(/QUORUM_JUDGE_MODEL/);
  });

  it("gets its logger from the registry's context argument", async () => {
    const lines: string[] = [];
    const j = judgeRegistry().create(
      ['llm', { baseUrl: server.url, model: 'm', apiKey: KEY, backoffMs: 1 }],
      '--judge',
      { log: (line) => lines.push(line) },
    );
    server.queue({ status: 503, body: 'busy' });
    await j.compare({ ...item, instruction: 'logged retry' });
    expect(lines).toEqual([expect.stringMatching(/^judge: .*503.*retry 1\/5/)]);
  });

  it('falls back to OPENAI_BASE_URL / OPENAI_API_KEY; QUORUM_JUDGE_* and options take precedence', async () => {
    const other = await startFakeLlmServer();
    try {
      // Only the OpenAI variables: they are used.
      await llmJudge(
        { backoffMs: 1 },
        { env: { OPENAI_BASE_URL: server.url, OPENAI_API_KEY: KEY, QUORUM_JUDGE_MODEL: 'm' } },
      ).compare(item);
      expect(server.requests.at(-1)!.headers.authorization).toBe(`Bearer ${KEY}`);
      // Both: Quorum's own win (the OpenAI URL points at another server, which must see nothing).
      const before = other.requests.length;
      await llmJudge(
        { backoffMs: 1 },
        {
          env: {
            QUORUM_JUDGE_BASE_URL: server.url,
            QUORUM_JUDGE_API_KEY: KEY,
            QUORUM_JUDGE_MODEL: 'm',
            OPENAI_BASE_URL: other.url,
            OPENAI_API_KEY: 'sk-openai-0000',
          },
        },
      ).compare({ ...item, instruction: 'own variables' });
      expect(other.requests.length).toBe(before);
      expect(server.requests.at(-1)!.headers.authorization).toBe(`Bearer ${KEY}`);
      // An empty Quorum variable counts as unset; an option beats every variable.
      await llmJudge(
        { backoffMs: 1, baseUrl: other.url },
        { env: { QUORUM_JUDGE_API_KEY: '', OPENAI_API_KEY: 'sk-openai-0000', QUORUM_JUDGE_MODEL: 'm' } },
      ).compare({ ...item, instruction: 'option wins' });
      expect(other.requests.at(-1)!.headers.authorization).toBe('Bearer sk-openai-0000');
    } finally {
      await other.close();
    }
  });
});

describe('llm judge: faults', () => {
  it('(b) survives a request that times out, then answers', async () => {
    server.queue('hang');
    const j = judge({ timeoutMs: 200 });
    expect((await j.compare(item)).winner).toBe('a');
    expect(server.requests).toHaveLength(2);
    expect(j.stats()).toMatchObject({ requests: 2, retries: 1 });
    expect(logs.at(-1)).toMatch(/no answer within 200 ms; retry 1\/3/);
  });

  it('(c) survives 429 with Retry-After: 0, then 200', async () => {
    server.queue({ status: 429, headers: { 'retry-after': '0' }, body: '{"error":"rate limited"}' });
    const j = judge({ backoffMs: 60_000 }); // Retry-After (0 s) is honoured instead of the 60 s backoff
    expect((await j.compare(item)).winner).toBe('a');
    expect(server.requests).toHaveLength(2);
  });

  it('(d) survives 500, then 200, and a connection reset', async () => {
    server.queue({ status: 500, body: 'internal error' }, 'reset');
    const j = judge();
    expect((await j.compare(item)).winner).toBe('a');
    expect(server.requests).toHaveLength(3);
  });

  it('(e) retries garbage bodies, then answers; fails clearly when garbage persists', async () => {
    server.queue({ status: 200, body: '<html>bad gateway</html>' }, { status: 200, body: '{"id":"x"}' });
    expect((await judge().compare(item)).winner).toBe('a');
    expect(server.requests).toHaveLength(3);

    server.queue(...Array.from({ length: 3 }, () => ({ status: 200, body: 'not json at all' })));
    const e1 = await judge({ retries: 2 })
      .compare(item)
      .catch((e: unknown) => e);
    expect(isJudgeError(e1)).toBe(true);
    expect(String(e1)).toMatch(/failed 3 times; last: malformed body \(not JSON\): "not json at all"/);

    server.queue(...Array.from({ length: 2 }, () => ({ status: 200, body: '{"object":"chat.completion"}' })));
    const e2 = await judge({ retries: 1 })
      .compare(item)
      .catch((e: unknown) => e);
    expect(String(e2)).toMatch(/malformed body \(no choices\[0\]\.message\.content\)/);
  });

  it('fails at once on 401 with a hint, and on a reply without a verdict (not cached)', async () => {
    server.queue({ status: 401, body: '{"error":"bad key"}' });
    const e = await judge()
      .compare(item)
      .catch((x: unknown) => x);
    expect(String(e)).toMatch(/HTTP 401/);
    expect(String(e)).toMatch(/check the API key/);
    expect(server.requests).toHaveLength(1);

    const dir = tmp();
    const body = JSON.stringify({ choices: [{ message: { content: 'Both are fine.' } }] });
    server.queue({ status: 200, body });
    const j = judge({ cache: path.join(dir, 'c.jsonl'), logprobs: false });
    await expect(j.compare(item)).rejects.toThrow(/no model identifier \(m or M\): "Both are fine."/);
    expect(j.cache.size).toBe(0);
    server.queue({
      status: 200,
      body: JSON.stringify({ choices: [{ message: { content: 'Rating: [[11]]' } }] }),
    });
    await expect(j.score({ instruction: 'q', answer: 'a' })).rejects.toThrow(/\[\[rating\]\] from 1 to 10/);
  });
});

describe('llm judge: the verdict cache', () => {
  it('a second run sends zero requests', async () => {
    const file = path.join(tmp(), 'judge-cache.jsonl');
    const first = judge({ cache: file });
    const verdicts = [];
    for (const it of items) verdicts.push(await first.compare(it));
    const scored = await first.score({ instruction: 'q', answer: 'some answer' });
    expect(server.requests).toHaveLength(items.length + 1);
    server.requests.length = 0;
    const second = judge({ cache: file });
    for (const [i, it] of items.entries()) expect(await second.compare(it)).toEqual(verdicts[i]);
    expect(await second.score({ instruction: 'q', answer: 'some answer' })).toBe(scored);
    expect(server.requests).toHaveLength(0);
    expect(second.stats()).toEqual({ requests: 0, retries: 0, cacheHits: items.length + 1 });
  });

  it('a crash mid-write (a torn last line) loses nothing else', async () => {
    const file = path.join(tmp(), 'judge-cache.jsonl');
    const j = judge({ cache: file });
    for (const it of items.slice(0, 4)) await j.compare(it);
    appendFileSync(file, '{"key":"abc","model":"judge-mo'); // the process died here
    const reopened = new VerdictCache(file);
    expect(reopened.size).toBe(4);
    expect(reopened.skippedLines).toBe(1);
    server.requests.length = 0;
    const after = judge({ cache: file });
    for (const it of items.slice(0, 5)) await after.compare(it);
    expect(server.requests).toHaveLength(1); // only the new item is asked
    const lines = readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l !== '');
    expect(lines).toHaveLength(6); // 4 + the torn one + the new one, on its own line
    expect(new VerdictCache(file).size).toBe(5);
  });

  it('never writes the API key to the cache, errors, logs or the judge object', async () => {
    const file = path.join(tmp(), 'judge-cache.jsonl');
    const j = judge({ cache: file, timeoutMs: 200, retries: 1 });
    server.queue('hang', { status: 500, body: `upstream saw Authorization: Bearer ${KEY}` });
    const e500 = await j.compare(item).catch((x: unknown) => x);
    server.queue({ status: 400, body: JSON.stringify({ error: `invalid key ${KEY}` }) });
    const e400 = await j.compare(item).catch((x: unknown) => x);
    await j.compare(item);
    await j.score({ instruction: 'q', answer: 'a' });
    let eUrl: unknown;
    try {
      llmJudge({ baseUrl: `not a url ${KEY}`, model: 'm', apiKey: KEY }, { env: {} });
    } catch (x) {
      eUrl = x;
    }
    const errors = [e500, e400, eUrl];
    for (const e of errors) {
      expect(e).toBeInstanceOf(Error);
      expect(inspect(e, { depth: 10 })).not.toContain(KEY);
      expect(JSON.stringify(e)).not.toContain(KEY);
      expect(String((e as Error).stack)).not.toContain(KEY);
    }
    expect(String(e500)).toMatch(/HTTP 500 "upstream saw Authorization: Bearer \*\*\*"/);
    expect(String(e400)).toContain('invalid key ***');
    expect(readFileSync(file, 'utf8')).not.toContain(KEY);
    expect(
      readFileSync(file, 'utf8')
        .split('\n')
        .filter((l) => l !== ''),
    ).toHaveLength(2);
    expect(logs.join('\n')).not.toContain(KEY);
    expect(inspect(j, { depth: 10 })).not.toContain(KEY);
    expect(JSON.stringify(j)).not.toContain(KEY);
  });
});

describe('llm judge: secrets on disk (issue 16)', () => {
  const reply = (content: string, pm?: number): { status: number; body: string } => ({
    status: 200,
    body: JSON.stringify({
      choices: [
        {
          message: { content },
          logprobs:
            pm === undefined
              ? null
              : {
                  content: [
                    {
                      token: content.slice(0, 1),
                      logprob: 0,
                      top_logprobs: [
                        { token: 'm', logprob: Math.log(pm) },
                        { token: 'M', logprob: Math.log(1 - pm) },
                      ],
                    },
                  ],
                },
        },
      ],
    }),
  });

  it('masks a key the endpoint echoes in a verdict, and other Authorization-like values, in the cache', async () => {
    const file = path.join(tmp(), 'judge-cache.jsonl');
    const j = judge({ cache: file });
    const other = 'sk-proxy-Upstream-987654321';
    server.queue(reply(`M — you sent Authorization: Bearer ${KEY}`, 0.3));
    const v = await j.compare({ ...item, instruction: 'echo pairwise' });
    expect(v.winner).toMatch(/^[ab]$/); // read from the log-probs
    server.queue(
      reply(
        `Your key ${KEY} works; upstream "authorization": "Bearer ${other}", x-api-key: ${other}z. Rating: [[7]]`,
      ),
    );
    expect(await j.score({ instruction: 'echo single', answer: 'a' })).toBe(7);
    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain(KEY);
    expect(text).not.toContain(`Bearer ${KEY}`);
    expect(text).not.toContain(other);
    expect(text).toContain('Authorization: Bearer ***');
    expect(text).toContain('Your key *** works');
    // the masked record reads back to the same verdicts, without a request
    server.requests.length = 0;
    const again = judge({ cache: file });
    expect(await again.compare({ ...item, instruction: 'echo pairwise' })).toEqual(v);
    expect(await again.score({ instruction: 'echo single', answer: 'a' })).toBe(7);
    expect(server.requests).toHaveLength(0);
    // the judge's object and the cache in memory hold the masked text too
    expect(inspect(j, { depth: 10 })).not.toContain(KEY);
  });

  it('masks the key in its JSON-escaped form, and other bearer tokens, in errors and logs', async () => {
    const odd = 'sk-"quoted"\\key-42';
    const lines: string[] = [];
    const j = llmJudge(
      { baseUrl: server.url, model: 'm', apiKey: odd, retries: 1, backoffMs: 1 },
      { env: {}, log: (m) => lines.push(m) },
    );
    server.queue(
      { status: 503, body: JSON.stringify({ error: `busy, key ${odd}` }) },
      { status: 400, body: `bad request; proxy used Bearer eyJhbGciOi.J9x2-abc_DEF and key ${odd}` },
    );
    const e = await j.compare(item).catch((x: unknown) => x);
    const all = `${String(e)}\n${JSON.stringify(e)}\n${inspect(e, { depth: 10 })}\n${lines.join('\n')}`;
    expect(all).not.toContain(odd);
    expect(all).not.toContain(JSON.stringify(odd).slice(1, -1));
    expect(all).not.toContain('eyJhbGciOi');
    expect(all).not.toMatch(/quoted|key-42/); // nothing of the key, in any form
    expect(String(e)).toContain('Bearer ***');
  });
});

describe('maskSecrets', () => {
  it('masks credentials but leaves prose alone', () => {
    const secrets = secretForms(KEY);
    expect(maskSecrets(`a ${KEY} b`, secrets)).toBe('a *** b');
    expect(maskSecrets('Proxy-Authorization: Basic dXNlcjpwYXNz', [])).toBe('Proxy-Authorization: Basic ***');
    expect(maskSecrets('{"api_key":"abc"}', [])).toBe('{"api_key":"***"}');
    const prose = 'Basic arithmetic is right; the bearer of bad news. Rating: [[8]]';
    expect(maskSecrets(prose, secrets)).toBe(prose);
  });
});

describe('llm judge: string options stay strings (issue 16)', () => {
  it('sends a key with leading zeros exactly as typed', async () => {
    const j = judgeRegistry().create(
      ['llm', { baseUrl: server.url, model: 'm', apiKey: '000123', backoffMs: 1 }],
      '--judge',
    );
    await j.compare({ ...item, instruction: 'zeros' });
    expect(server.requests.at(-1)!.headers.authorization).toBe('Bearer 000123');
    await llmJudge(
      { backoffMs: 1 },
      { env: { QUORUM_JUDGE_BASE_URL: server.url, QUORUM_JUDGE_MODEL: 'm', QUORUM_JUDGE_API_KEY: '000123' } },
    ).compare({ ...item, instruction: 'zeros env' });
    expect(server.requests.at(-1)!.headers.authorization).toBe('Bearer 000123');
  });

  it('refuses a key that arrives as a number (--judge-opt apiKey=000123 read as 123) without echoing it', () => {
    // What the CLI's key=value parser hands over for `--judge-opt apiKey=000123` today.
    const create = () =>
      judgeRegistry().create(['llm', { baseUrl: server.url, model: 'm', apiKey: 123 }], '--judge');
    expect(create).toThrow(ConfigError);
    expect(create).toThrow(expect.objectContaining({ location: { field: '--judge(llm).apiKey' } }));
    expect(create).toThrow(/QUORUM_JUDGE_API_KEY/);
    const e = (() => {
      try {
        create();
      } catch (x) {
        return x as Error;
      }
      return undefined;
    })();
    expect(String(e)).not.toContain('123');
    expect(() =>
      llmJudge({ baseUrl: server.url, model: 'm', apiKey: 987654 as unknown as string }, { env: {} }),
    ).toThrow(ConfigError);
    expect(server.requests).toHaveLength(0);
  });
});

describe('llm judge: a verdict token that disagrees with its log-probs (issue 16)', () => {
  const conflicting = (token: 'm' | 'M', pm: number) => ({
    status: 200,
    body: JSON.stringify({
      choices: [
        {
          message: { content: token },
          logprobs: {
            content: [
              {
                token,
                logprob: Math.log(token === 'm' ? pm : 1 - pm),
                top_logprobs: [
                  { token: 'm', logprob: Math.log(pm) },
                  { token: 'M', logprob: Math.log(1 - pm) },
                ],
              },
            ],
          },
        },
      ],
    }),
  });

  it('lets the log-probs decide, records the conflict in the result and the cache, and warns', async () => {
    const file = path.join(tmp(), 'judge-cache.jsonl');
    const lines: string[] = [];
    const make = () =>
      llmJudge(
        { baseUrl: server.url, model: 'judge-model', apiKey: KEY, backoffMs: 1, cache: file },
        { env: {}, log: (m) => lines.push(m) },
      );
    const it1 = { ...item, instruction: 'conflict' };
    server.queue(conflicting('m', 0.1)); // says "the first", but P(first) = 0.1
    const v = await make().compare(it1);
    const prompt = (JSON.parse(server.requests.at(-1)!.body) as { messages: { content: string }[] })
      .messages[1]!.content;
    const aFirst = prompt.indexOf(it1.a) < prompt.indexOf(it1.b);
    const shownFirst = aFirst ? 'a' : 'b';
    const shownSecond = aFirst ? 'b' : 'a';
    expect(v).toEqual({
      winner: shownSecond,
      p: expect.closeTo(aFirst ? 0.1 : 0.9, 10),
      conflict: { token: shownFirst, logprobs: shownSecond },
    });
    expect(lines).toEqual([expect.stringMatching(/conflict.*log-probs/)]);
    const record = JSON.parse(readFileSync(file, 'utf8').trim()) as Record<string, unknown>;
    expect(record).toMatchObject({ content: 'm', pFirst: expect.closeTo(0.1, 10), conflict: true });
    // read back from the cache: the same verdict, the conflict still reported
    expect(await make().compare(it1)).toEqual(v);
    expect(server.requests).toHaveLength(1);
    // an agreeing reply has no conflict field and no warning
    lines.length = 0;
    const agreeing = await make().compare({ ...item, instruction: 'agree' });
    expect(agreeing).not.toHaveProperty('conflict');
    expect(lines).toEqual([]);
  });
});
