import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Template } from '@huggingface/jinja';
import { CheckpointError, DataError } from '@quorum/core';
import { afterAll, describe, expect, it } from 'vitest';
import { chatTemplateFormat, HfTokenizer } from './hf-tokenizer.js';
import { loadTokenizer } from './load-tokenizer.js';
import { encodePrompt, encodePromptResponse, formatPrompt } from './template.js';
import { projectTokenizer, type TextTokenizer, Tokenizer } from './tokenizer.js';

const fixtures = fileURLToPath(new URL('../fixtures/', import.meta.url));
const stories = path.join(fixtures, 'stories260K-tokenizer');
const zephyrConfig = path.join(fixtures, 'chat-templates/zephyr/tokenizer_config.json');
const lines = (file: string): string[] =>
  readFileSync(path.join(stories, file), 'utf8').replace(/\n$/, '').split('\n');

const temps: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'quorum-tok-'));
  temps.push(dir);
  return dir;
}
afterAll(async () => {
  const { rmSync } = await import('node:fs');
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

/** A folder with stories260K's tokenizer.json and the given files. */
function folder(files: Record<string, string> = {}, withTokenizerJson = true): string {
  const dir = tempDir();
  if (withTokenizerJson) copyFileSync(path.join(stories, 'tokenizer.json'), path.join(dir, 'tokenizer.json'));
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
  return dir;
}

const quiet = { onWarning: () => {} };
const prompts = [
  { instruction: 'Tell me a story about a cat.', input: '' },
  { instruction: 'Translate to French', input: 'The dog ran to the park.' },
  { instruction: '  Two leading spaces, 你好 and 🙂!', input: '' },
];
const answers = [
  'Once upon a time, there was a cat named Tom.',
  ' A leading space.',
  'Ümlaut café — “ok” 🙂',
];

describe('HfTokenizer over the real stories260K tokenizer (llama2.c)', async () => {
  const notes: string[] = [];
  const tok = await loadTokenizer(stories, { onWarning: (m) => notes.push(m) });

  it('is a Hugging Face tokenizer with the Llama specials; pad falls back to eos and says so', () => {
    expect(tok).toBeInstanceOf(HfTokenizer);
    const hf = tok as HfTokenizer;
    expect([hf.vocabSize, hf.bosId, hf.eosId, hf.unkId, hf.padId, hf.addBos]).toEqual([
      512,
      1,
      2,
      0,
      2,
      true,
    ]);
    expect(hf.id).toMatch(/^hf-512-[0-9a-f]{12}$/);
    expect(notes).toHaveLength(1);
    expect(notes[0]).toContain('no pad_token; padding uses the eos token "</s>" (id 2)');
    expect(hf.notes).toEqual(notes);
    expect(hf.promptFormat.name).toBe('instruction');
    expect(hf.promptFormat.prefixIds).toEqual([1]);
  });

  it("reproduces llama2.c's ids for every sample line (BOS first) and decodes them back", () => {
    const samples = lines('checks/tokenizer-samples.txt');
    const expected = lines('checks/tokenizer-ids.txt');
    expect(samples).toHaveLength(8);
    expect(expected).toHaveLength(8);
    samples.forEach((text, i) => {
      const ids = [tok.bosId as number, ...tok.encode(text)];
      expect(ids.join(' '), `line ${i + 1}: ${JSON.stringify(text)}`).toBe(expected[i]);
      expect(tok.decode(ids)).toBe(text);
      expect(tok.decode(tok.encode(text))).toBe(text);
    });
  });

  it('decode drops or shows the special tokens; an empty id list is empty text', () => {
    const ids = [1, ...tok.encode('Hi'), 2, 2];
    expect(tok.decode(ids)).toBe('Hi');
    expect(tok.decode(ids, { specials: 'show' })).toBe('<s> Hi</s></s>');
    expect(tok.decode([])).toBe('');
  });

  it('encodeContinuation leaves out the dummy prefix space; special-token strings stay special', () => {
    expect(tok.encode('\n').length).toBe(2); // '▁', <0x0A>
    expect([...tok.encodeContinuation('\n')]).toEqual([...tok.encode('\n').subarray(1)]);
    expect(tok.decode([...tok.encode('a\n'), ...tok.encodeContinuation('b')])).toBe('a\nb');
    expect([...tok.encodeContinuation('x</s>y')]).toEqual([
      ...tok.encodeContinuation('x'),
      2,
      ...tok.encode('y'), // after a special token, a section starts as a text does (tokenizers' rule)
    ]);
  });

  it("lays out Quorum's template after BOS, encoding like the whole text, and keeps the prompt-prefix guarantee", () => {
    for (const prompt of prompts) {
      for (const answer of answers) {
        const seq = encodePromptResponse(tok, prompt, answer, { maxLength: 512 });
        const p = encodePrompt(tok, prompt);
        expect([...seq.ids.subarray(0, seq.promptLength)]).toEqual([...p]);
        expect(seq.ids[0]).toBe(1);
        expect(seq.ids[seq.ids.length - 1]).toBe(tok.eosId);
        expect(tok.decode(seq.ids)).toBe(formatPrompt(prompt) + answer);
        // the pieces give the ids of the whole text (no stray '▁' at a piece boundary)
        expect([...seq.ids]).toEqual([1, ...tok.encode(formatPrompt(prompt) + answer), 2]);
      }
    }
  });

  it('truncates the prompt body first, then the start of the answer; BOS, markers and eos stay', () => {
    const long = Array.from({ length: 120 }, (_, i) => `word${i}`).join(' ');
    const seq = encodePromptResponse(tok, { instruction: long, input: '' }, long, { maxLength: 100 });
    expect(seq.ids.length).toBe(100);
    expect(seq.ids[0]).toBe(1);
    expect(seq.ids[99]).toBe(2);
    const text = tok.decode(seq.ids);
    expect(text.startsWith('### Instruction:\nword0')).toBe(true);
    expect(text).toContain('\n\n### Response:\n');
    expect(text.endsWith('word119')).toBe(true);
    expect(seq.truncated.prompt).toBeGreaterThan(0);
    expect(seq.truncated.response).toBeGreaterThan(0);
  });
});

describe('chat templates', () => {
  const zephyrDir = folder({ 'tokenizer_config.json': readFileSync(zephyrConfig, 'utf8') });
  const template = new Template(JSON.parse(readFileSync(zephyrConfig, 'utf8')).chat_template as string);
  const render = (messages: { role: string; content: string }[], add_generation_prompt: boolean): string =>
    template.render({ messages, add_generation_prompt, bos_token: '<s>', eos_token: '</s>' });

  it("a Zephyr tokenizer_config.json gives the model's own layout, ids equal to HF's rendered text", async () => {
    const tok = await loadTokenizer(zephyrDir, quiet);
    const f = tok.promptFormat;
    expect([f.name, f.head, f.tail, f.end, f.eos]).toEqual([
      'chat-template',
      '<|user|>\n',
      '</s>\n<|assistant|>\n',
      '</s>\n',
      false,
    ]);
    expect(f.prefixIds).toEqual([]); // the template writes bos_token itself when a model wants it
    expect(tok.padId).toBe(2);
    for (const prompt of prompts) {
      const content = prompt.input === '' ? prompt.instruction : `${prompt.instruction}\n\n${prompt.input}`;
      const p = encodePrompt(tok, prompt);
      expect([...p]).toEqual([...tok.encode(render([{ role: 'user', content }], true))]);
      for (const answer of answers) {
        const seq = encodePromptResponse(tok, prompt, answer, { maxLength: 512 });
        const full = render(
          [
            { role: 'user', content },
            { role: 'assistant', content: answer },
          ],
          false,
        );
        expect([...seq.ids]).toEqual([...tok.encode(full)]);
        expect([...seq.ids.subarray(0, seq.promptLength)]).toEqual([...p]);
      }
    }
  });

  it('truncation keeps the end of turn, and promptFormat "instruction" overrides the template', async () => {
    const tok = await loadTokenizer(zephyrDir, quiet);
    const long = Array.from({ length: 120 }, (_, i) => `word${i}`).join(' ');
    const seq = encodePromptResponse(tok, { instruction: long, input: '' }, long, { maxLength: 80 });
    expect(seq.ids.length).toBe(80);
    const end = [...tok.encodeContinuation(tok.promptFormat.end)]; // '</s>', then '▁\n' (a section after a special token)
    expect(end[0]).toBe(2);
    expect([...seq.ids.subarray(80 - end.length)]).toEqual(end);
    expect(tok.decode(seq.ids.subarray(0, 80 - end.length)).endsWith('word119')).toBe(true);
    expect(seq.truncated.prompt).toBeGreaterThan(0);
    const plain = await loadTokenizer(zephyrDir, { ...quiet, promptFormat: 'instruction' });
    expect(plain.promptFormat.name).toBe('instruction');
    expect(plain.promptFormat.prefixIds).toEqual([1]); // add_bos_token: true
    expect(plain.id).not.toBe(tok.id);
    await expect(loadTokenizer(stories, { ...quiet, promptFormat: 'chat-template' })).rejects.toThrow(
      /tokenizer_config\.json field "chat_template": has no chat_template/,
    );
  });

  it('a ChatML template (Qwen1.5 style, default system prompt) splits into head, tail and end', async () => {
    const chatml =
      "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
    const notes: string[] = [];
    const f = chatTemplateFormat(chatml, { eos: '</s>' }, { file: 'cfg.json', onNote: (m) => notes.push(m) });
    expect(f.head).toBe('<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n');
    expect(f.tail).toBe('<|im_end|>\n<|im_start|>assistant\n');
    expect(f.end).toBe('<|im_end|>\n');
    expect(notes).toEqual([]);
    const tok = await loadTokenizer(stories, quiet);
    const seq = encodePromptResponse(tok, prompts[0]!, answers[0]!, { maxLength: 512, format: f });
    expect(tok.decode(seq.ids)).toBe(`${f.head}${prompts[0]!.instruction}${f.tail}${answers[0]}${f.end}`);
    expect([...seq.ids.subarray(0, seq.promptLength)]).toEqual([
      ...encodePrompt(tok, prompts[0]!, { format: f }),
    ]);
  });

  it('a Llama-2 template: spaces before the content go with it, and the prompt is its generation prompt', async () => {
    const llama2 =
      "{% for message in messages %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + message['content'].strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' ' + message['content'].strip() + ' ' + eos_token }}{% endif %}{% endfor %}";
    const notes: string[] = [];
    const config = JSON.stringify({ bos_token: '<s>', eos_token: '</s>', chat_template: llama2 });
    const tok = await loadTokenizer(folder({ 'tokenizer_config.json': config }), {
      onWarning: (m) => notes.push(m),
    });
    expect(notes.filter((n) => n.includes('generation prompt'))).toEqual([]);
    const t = new Template(llama2);
    const vars = { bos_token: '<s>', eos_token: '</s>' };
    const prompt = { instruction: 'Tell me a story.', input: '' };
    const full = t.render({
      ...vars,
      messages: [
        { role: 'user', content: prompt.instruction },
        { role: 'assistant', content: 'Once upon a time.' },
      ],
    });
    const gen = t.render({ ...vars, messages: [{ role: 'user', content: prompt.instruction }] });
    const seq = encodePromptResponse(tok, prompt, 'Once upon a time.', { maxLength: 512 });
    expect([...seq.ids]).toEqual([...tok.encode(full)]);
    expect([...encodePrompt(tok, prompt)]).toEqual([...tok.encode(gen)]);
    expect(seq.ids[0]).toBe(1);
  });

  it('notes a generation prompt that differs from the text before an answer, and refuses a template that drops content', () => {
    const differs =
      "{% for m in messages %}{{ '<u>' + m['content'] + '</u>' }}{% endfor %}{% if add_generation_prompt %}{{ '<gen>' }}{% endif %}";
    const notes: string[] = [];
    chatTemplateFormat(differs, { eos: '</s>' }, { file: 'cfg.json', onNote: (m) => notes.push(m) });
    expect(notes).toHaveLength(1);
    expect(notes[0]).toContain('differs from the text before an answer');
    const drops =
      "{% for m in messages %}{% if m['role'] == 'user' %}{{ m['content'] }}{% endif %}{% endfor %}";
    expect(() => chatTemplateFormat(drops, {}, { file: 'cfg.json' })).toThrow(DataError);
    expect(() => chatTemplateFormat(drops, {}, { file: 'cfg.json' })).toThrow(/field "chat_template"/);
  });
});

describe('loadTokenizer', () => {
  it("a folder with vocab.json gives Quorum's tokenizer (the same vocabulary id)", async () => {
    const dir = folder({ 'vocab.json': JSON.stringify(projectTokenizer().vocab.toJSON()) }, false);
    const tok = await loadTokenizer(dir);
    expect(tok).toBeInstanceOf(Tokenizer);
    expect(tok.id).toBe(projectTokenizer().id);
    expect(tok.promptFormat.name).toBe('instruction');
    await expect(loadTokenizer(dir, { vocabSize: 512 })).rejects.toThrow('has 4096 ids, but the model');
  });

  it('a folder with neither file, or no folder, is a CheckpointError naming it and the fix', async () => {
    const empty = folder({}, false);
    await expect(loadTokenizer(empty)).rejects.toThrow(CheckpointError);
    await expect(loadTokenizer(empty)).rejects.toThrow(
      new RegExp(
        `${empty}: has neither vocab.json .* nor tokenizer.json[\\s\\S]*hint: .*download the whole folder`,
      ),
    );
    await expect(loadTokenizer(path.join(empty, 'missing'))).rejects.toThrow('is not a model folder');
  });

  it('checks the vocabulary against the model: too few embedding rows is an error naming both numbers', async () => {
    await expect(loadTokenizer(stories, { ...quiet, vocabSize: 500 })).rejects.toThrow(
      /tokenizer\.json field "model\.vocab": has ids up to 511 \(512 ids\), but the model's vocab_size is 500/,
    );
    const padded = await loadTokenizer(stories, { ...quiet, vocabSize: 576 }); // a padded embedding is fine
    expect(padded.vocabSize).toBe(576);
    expect((padded as HfTokenizer).tokenizerVocabSize).toBe(512);
  });

  it('refuses links out of the folder, non-files and oversized files before reading them', async () => {
    const outside = tempDir();
    copyFileSync(path.join(stories, 'tokenizer.json'), path.join(outside, 'tokenizer.json'));
    const linked = folder({}, false);
    symlinkSync(path.join(outside, 'tokenizer.json'), path.join(linked, 'tokenizer.json'));
    await expect(loadTokenizer(linked)).rejects.toThrow(
      /is a link to .*outside the model folder[\s\S]*cp -L/,
    );
    const inside = folder(
      { 'tokenizer_config.json': readFileSync(path.join(stories, 'tokenizer_config.json'), 'utf8') },
      false,
    );
    mkdirSync(path.join(inside, 'blobs'));
    copyFileSync(path.join(stories, 'tokenizer.json'), path.join(inside, 'blobs', 'abc'));
    symlinkSync(path.join('blobs', 'abc'), path.join(inside, 'tokenizer.json'));
    expect((await loadTokenizer(inside, quiet)).vocabSize).toBe(512); // a link inside the folder is fine
    const notFile = folder({}, false);
    mkdirSync(path.join(notFile, 'tokenizer.json'));
    await expect(loadTokenizer(notFile)).rejects.toThrow('is not a regular file');
    const big = folder({ 'special_tokens_map.json': `{"x": "${'a'.repeat(1024 * 1024)}"}` });
    await expect(loadTokenizer(big, quiet)).rejects.toThrow(
      /special_tokens_map\.json: is \d+ bytes, more than/,
    );
  });

  it('invalid JSON and broken special tokens are DataErrors naming the file and key', async () => {
    const badJson = folder({ 'tokenizer_config.json': '{"eos_token": ' });
    await expect(loadTokenizer(badJson)).rejects.toThrow(DataError);
    await expect(loadTokenizer(badJson)).rejects.toThrow(
      /tokenizer_config\.json field "json": is not valid JSON/,
    );
    const damaged = folder({}, false);
    writeFileSync(path.join(damaged, 'tokenizer.json'), '{"version": "1.0"');
    await expect(loadTokenizer(damaged)).rejects.toThrow(/tokenizer\.json field "json": is not valid JSON/);
    const unknown = folder({ 'tokenizer_config.json': JSON.stringify({ eos_token: '<|im_end|>' }) });
    await expect(loadTokenizer(unknown)).rejects.toThrow(
      /tokenizer_config\.json field "eos_token": names "<\|im_end\|>", which is not a token/,
    );
    const noEos = folder({ 'tokenizer_config.json': '{}' });
    await expect(loadTokenizer(noEos)).rejects.toThrow(/field "eos_token": no eos_token is set/);
    const fromMap = await loadTokenizer(
      folder({
        'tokenizer_config.json': '{}',
        'special_tokens_map.json': JSON.stringify({ bos_token: '<s>', eos_token: { content: '</s>' } }),
      }),
      quiet,
    );
    expect(fromMap.eosId).toBe(2);
    expect((fromMap as HfTokenizer).addBos).toBe(true); // from the post-processor, as the config does not say
  });
});

describe('files(): a tokenizer saved beside a model loads back as itself', () => {
  /** Writes `files` to a fresh folder, as a checkpoint save does. */
  function saveFiles(files: Readonly<Record<string, string>>): string {
    const dir = tempDir();
    for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
    return dir;
  }
  const texts = [...prompts.map((p) => p.instruction), ...answers, 'Once upon a time </s> the end'];
  function expectSame(a: TextTokenizer, b: TextTokenizer): void {
    expect([b.id, b.vocabSize, b.padId, b.eosId, b.bosId, b.unkId]).toEqual([
      a.id,
      a.vocabSize,
      a.padId,
      a.eosId,
      a.bosId,
      a.unkId,
    ]);
    expect(b.promptFormat.name).toBe(a.promptFormat.name);
    for (const text of texts) {
      expect([...b.encode(text)]).toEqual([...a.encode(text)]);
      expect([...b.encodeContinuation(text)]).toEqual([...a.encodeContinuation(text)]);
    }
    for (const prompt of prompts)
      expect([...encodePromptResponse(b, prompt, answers[0]!, { maxLength: 48 }).ids]).toEqual([
        ...encodePromptResponse(a, prompt, answers[0]!, { maxLength: 48 }).ids,
      ]);
    expect(b.files()).toEqual(a.files());
  }

  it("Quorum's tokenizer is its vocab.json", async () => {
    const tok = projectTokenizer();
    expect(Object.keys(tok.files())).toEqual(['vocab.json']);
    const back = await loadTokenizer(saveFiles(tok.files()));
    expect(back).toBeInstanceOf(Tokenizer);
    expectSame(tok, back);
  });

  it("a Hugging Face tokenizer's files are the ones it was read from, byte for byte", async () => {
    const tok = await loadTokenizer(stories, quiet);
    const files = tok.files();
    expect(Object.keys(files).sort()).toEqual([
      'special_tokens_map.json',
      'tokenizer.json',
      'tokenizer_config.json',
    ]);
    for (const [name, text] of Object.entries(files))
      expect(text === readFileSync(path.join(stories, name), 'utf8'), name).toBe(true);
    const back = await loadTokenizer(saveFiles(files), quiet);
    expect(back).toBeInstanceOf(HfTokenizer);
    expectSame(tok, back);
    const zephyr = await loadTokenizer(
      folder({ 'tokenizer_config.json': readFileSync(zephyrConfig, 'utf8') }),
      quiet,
    );
    expect(zephyr.promptFormat.name).toBe('chat-template');
    expectSame(zephyr, await loadTokenizer(saveFiles(zephyr.files()), quiet));
  });

  it('records the read options that change the id (instruction over a chat template, a padded vocabulary)', async () => {
    const zephyrDir = folder({ 'tokenizer_config.json': readFileSync(zephyrConfig, 'utf8') });
    const plain = await loadTokenizer(zephyrDir, { ...quiet, promptFormat: 'instruction' });
    expect(JSON.parse(plain.files()['quorum-tokenizer.json'] as string)).toEqual({
      promptFormat: 'instruction',
    });
    const dir = saveFiles(plain.files());
    const back = await loadTokenizer(dir, quiet);
    expect(back.promptFormat.name).toBe('instruction');
    expectSame(plain, back);
    // an explicit option still wins over the saved one
    const chat = await loadTokenizer(dir, { ...quiet, promptFormat: 'auto' });
    expect(chat.promptFormat.name).toBe('chat-template');
    expect(chat.id).not.toBe(plain.id);

    const padded = await loadTokenizer(stories, { ...quiet, vocabSize: 576 });
    expect(JSON.parse(padded.files()['quorum-tokenizer.json'] as string)).toEqual({ vocabSize: 576 });
    const paddedBack = await loadTokenizer(saveFiles(padded.files()), quiet);
    expect(paddedBack.vocabSize).toBe(576);
    expectSame(padded, paddedBack);
  });

  it('a tokenizer built from parsed files writes them as JSON that reads back the same', async () => {
    const tok = new HfTokenizer(
      {
        dir: stories,
        tokenizerJson: readFileSync(path.join(stories, 'tokenizer.json'), 'utf8'),
        tokenizerConfig: JSON.parse(readFileSync(path.join(stories, 'tokenizer_config.json'), 'utf8')),
      },
      quiet,
    );
    expect(Object.keys(tok.files()).sort()).toEqual(['tokenizer.json', 'tokenizer_config.json']);
    expectSame(tok, await loadTokenizer(saveFiles(tok.files()), quiet));
  });

  it('a damaged quorum-tokenizer.json is a DataError naming the file and the key', async () => {
    const bad = folder({ 'quorum-tokenizer.json': JSON.stringify({ promptFormat: 'chat' }) });
    await expect(loadTokenizer(bad, quiet)).rejects.toThrow(DataError);
    await expect(loadTokenizer(bad, quiet)).rejects.toThrow(
      /quorum-tokenizer\.json field "promptFormat": must be "auto", "chat-template" or "instruction", got/,
    );
    const unknown = folder({ 'quorum-tokenizer.json': JSON.stringify({ prompt: 'instruction' }) });
    await expect(loadTokenizer(unknown, quiet)).rejects.toThrow(/field "prompt": unknown key/);
    const size = folder({ 'quorum-tokenizer.json': JSON.stringify({ vocabSize: 500 }) });
    await expect(loadTokenizer(size, quiet)).rejects.toThrow(/but the model's vocab_size is 500/);
  });
});
