/**
 * A real OpenAI-compatible chat-completions server on 127.0.0.1 (a free port), for tests of the `llm`
 * judge and of commands that use it. By default it answers like a judge that prefers the longer answer
 * (AlpacaEval prompt: `m` or `M` with log-probs) and rates an answer by its length (MT-Bench prompt:
 * "Rating: [[r]]"). Tests queue faults: a hang (never answers), a connection reset, any status, headers
 * and body. Every request is recorded (headers included, so tests can check what was sent).
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export type FakeReply =
  | 'ok'
  | 'hang'
  | 'reset'
  | { readonly status: number; readonly headers?: Readonly<Record<string, string>>; readonly body: string };

export interface RecordedRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

export interface FakeLlmServer {
  /** Base URL ending in `/v1`. */
  readonly url: string;
  readonly requests: RecordedRequest[];
  /** Replies used, in order, before falling back to 'ok'. */
  queue(...replies: FakeReply[]): void;
  close(): Promise<void>;
}

/** The outputs shown in an AlpacaEval prompt, in order; undefined for other prompts. */
function pairwiseOutputs(prompt: string): [string, string] | undefined {
  const m =
    /"output": """([\s\S]*?)"""\s*\},\s*\{\s*"model_identifier": "M",\s*"output": """([\s\S]*?)"""/.exec(
      prompt,
    );
  return m === null ? undefined : [m[1] as string, m[2] as string];
}

function answerOf(prompt: string): string {
  const m =
    /\[The Start of Assistant's Answer\]\n([\s\S]*?)\n\[The End of Assistant's Answer\]/.exec(prompt) ??
    /[\s\S]*### Assistant A:\n([\s\S]*?)\n\n<\|The End of Assistant A's Conversation/.exec(prompt); // the last turn
  return m === null ? '' : (m[1] as string);
}

/** The default reply body: longer answer wins; rating 1 + min(9, ⌊length / 20⌋). */
export function defaultJudgeReply(requestBody: string): string {
  const req = JSON.parse(requestBody) as {
    model: string;
    messages: { content: string }[];
    logprobs?: boolean;
  };
  const prompt = req.messages.map((m) => m.content).join('\n');
  const outputs = pairwiseOutputs(prompt);
  let content: string;
  let logprobs: unknown = null;
  if (outputs !== undefined) {
    const [first, second] = outputs;
    const firstWins = first.length >= second.length;
    content = firstWins ? 'm' : 'M';
    // A confident but not certain judge: p(first) = 0.8 or 0.2.
    const pm = firstWins ? 0.8 : 0.2;
    if (req.logprobs === true) {
      logprobs = {
        content: [
          {
            token: content,
            logprob: Math.log(firstWins ? pm : 1 - pm),
            top_logprobs: [
              { token: 'm', logprob: Math.log(pm) },
              { token: 'M', logprob: Math.log(1 - pm) },
            ],
          },
        ],
      };
    }
  } else {
    const rating = 1 + Math.min(9, Math.floor(answerOf(prompt).length / 20));
    content = `The answer is judged by its length here.\n\nRating: [[${rating}]]`;
  }
  return JSON.stringify({
    id: 'chatcmpl-fake',
    object: 'chat.completion',
    model: req.model,
    choices: [{ index: 0, message: { role: 'assistant', content }, logprobs, finish_reason: 'stop' }],
  });
}

export async function startFakeLlmServer(): Promise<FakeLlmServer> {
  const requests: RecordedRequest[] = [];
  const pending: FakeReply[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      const reply = pending.shift() ?? 'ok';
      if (reply === 'hang') return; // never answers; closed by close()
      if (reply === 'reset') {
        req.socket.destroy();
        return;
      }
      if (reply === 'ok') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(defaultJudgeReply(body));
        return;
      }
      res.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers });
      res.end(reply.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    queue: (...replies) => pending.push(...replies),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
