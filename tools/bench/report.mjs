// Turns run.mjs's results into the printed tables and the Markdown file (same rows for both).

const MODES = [
  ['lm_fwd', 'LM forward'],
  ['lm_step', 'LM train step'],
  ['rm_fwd', 'RM forward'],
  ['rm_step', 'RM pair step'],
];
const ENGINES = [
  ['native', 'native'],
  ['wasm', 'wasm'],
  ['torch', 'PyTorch'],
];
/**
 * PyTorch 1.13 + OpenBLAS (2 threads) figures recorded on a quiet machine of this kind with the same sizes
 * (../shared/STACK.md, reference/cpu-kernels/torch_results_final.txt): a fixed yardstick when the live
 * PyTorch runs on a slow BLAS or the machine is busy. Not measured in this run.
 */
export const RECORDED_TORCH_MS = { lm_fwd: 154.2, lm_step: 411.3, rm_fwd: 122.8, rm_step: 858.5 };

/** Blocks the pretrained pair step runs on by default (run.mjs --step-layers): the deepest that fit the 4 GiB
 * tfjs-wasm heap with gradients and AdamW state at 2 × 512 tokens (llama 12 blocks reach 3.6 GiB of heap
 * without AdamW state; gpt2 12 blocks 4.0 GiB). The PyTorch twin runs the same depth. */
export const PRETRAINED_STEP_LAYERS = { llama: 8, gpt2: 6 };
const PRETRAINED_MODES = [
  ['lm_fwd', 'LM forward', 'fwd', 1.5],
  ['rm_fwd', 'RM forward', 'fwd', 1.5],
  ['rm_step', 'RM pair step', 'step', 1.0],
];
const PRETRAINED_LABELS = { llama: 'Llama (SmolLM-135M)', gpt2: 'GPT-2 small' };

const ARCHS = ['single', 'independent', 'linear-heads', 'lora', 'lora-r4', 'lora-top1'];

const ARCH_LABELS = {
  lora: 'lora (all layers, rank 8)',
  'lora-r4': 'lora (all layers, rank 4)',
  'lora-top1': 'lora top-1 (rank 8)',
};

const f0 = (x) => (Number.isFinite(x) ? x.toFixed(0) : '–');
const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : '–');
const ratio = (x) => (Number.isFinite(x) ? `${x.toFixed(2)}×` : '–');
const mib = (b) => (Number.isFinite(b) ? (b / 2 ** 20).toFixed(1) : '–');
const grouped = (n) => (Number.isFinite(n) ? n.toLocaleString('en-US') : '–');

function engineRows(r) {
  const rows = [];
  for (const [mode, label] of MODES) {
    const torch = r.engines.torch?.modes?.[mode];
    const wasm = r.engines.wasm?.modes?.[mode];
    for (const [key, name] of ENGINES) {
      const e = r.engines[key];
      if (e === undefined) continue;
      const m = e.modes?.[mode];
      if (e.error !== undefined || m === undefined || m.error !== undefined) {
        rows.push([label, name, 'failed', '', '', '', '', '', '', e.error ?? m?.error ?? 'not measured']);
        continue;
      }
      const threads = key === 'torch' ? e.threads : e.backend?.threads;
      const recorded = m.tokens / (RECORDED_TORCH_MS[mode] / 1000);
      rows.push([
        label,
        name,
        f0(m.medianMs),
        `${m.reps}`,
        f0(m.tokensPerSec),
        f0(m.cpuMs),
        torch?.tokensPerSec ? ratio(m.tokensPerSec / torch.tokensPerSec) : '–',
        wasm?.tokensPerSec ? ratio(m.tokensPerSec / wasm.tokensPerSec) : '–',
        ratio(m.tokensPerSec / recorded),
        key === 'torch' ? `${threads} thr, BLAS ${e.blas?.kind ?? '?'}` : `${threads} thr`,
      ]);
    }
  }
  return {
    head: [
      'mode',
      'engine',
      'ms/call',
      'n',
      'tokens/s',
      'CPU ms',
      '× PyTorch',
      '× wasm',
      '× PyTorch rec.',
      'note',
    ],
    align: 'llrrrrrrrl',
    rows,
  };
}

const within = (x, target, tol = 0.2) => Math.abs(x / target - 1) <= tol;
const mark = (ok) => (ok ? 'yes' : 'no');

function archGoal(arch, p, t, k) {
  if (!Number.isFinite(p) || !Number.isFinite(t)) return ['', ''];
  switch (arch) {
    case 'single':
      return ['baseline', ''];
    case 'independent':
      return [`time ≈ ${k}×, params ≈ ${k}×`, mark(within(t, k) && within(p, k))];
    case 'linear-heads':
      return ['time ≤ 1.05×', mark(t <= 1.05)];
    case 'lora':
    case 'lora-r4':
      // about k× by construction (every block runs per member); less is better, not a miss
      return [`params ≤ 1.1×, time ≲ ${k}×`, mark(p <= 1.1 && t <= k * 1.2)];
    case 'lora-top1':
      return ['params ≤ 1.1×, time ≤ 1.6×', mark(p <= 1.1 && t <= 1.6)];
    default:
      return ['', ''];
  }
}

function archRows(r) {
  const single = r.architectures.single;
  const sOk = single !== undefined && single.error === undefined;
  const rows = [];
  for (const arch of ARCHS) {
    const a = r.architectures[arch];
    if (a === undefined) continue;
    if (a.error !== undefined) {
      rows.push([arch, '', 'failed', '', '', '', '', '', '', '', a.error, '']);
      continue;
    }
    const pRatio = sOk ? a.params.total / single.params.total : Number.NaN;
    const tRatio = sOk ? single.timing.seqPerSec / a.timing.seqPerSec : Number.NaN;
    const mRatio = sOk ? a.memory.tfPeakBytes / single.memory.tfPeakBytes : Number.NaN;
    const [goal, met] = archGoal(arch, pRatio, tRatio, r.members);
    rows.push([
      ARCH_LABELS[arch] ?? arch,
      `${a.members}`,
      grouped(a.params.total),
      ratio(pRatio),
      mib(a.memory.tfPeakBytes),
      ratio(mRatio),
      mib(a.memory.rssHighWaterDeltaBytes),
      f0(a.timing.medianMs),
      f2(a.timing.seqPerSec),
      ratio(tRatio),
      goal,
      met,
    ]);
  }
  return {
    head: [
      'architecture',
      'k',
      'params',
      '× single',
      'tf peak MiB',
      '× single',
      'RSS Δ MiB',
      'ms/score',
      'seq/s',
      'time × single',
      'goal',
      'met',
    ],
    align: 'lrrrrrrrrrll',
    rows,
  };
}

const gib = (b) => (Number.isFinite(b) ? (b / 2 ** 30).toFixed(2) : '–');

/** The mode's figures from one engine's child (fwd or step), or an error string. */
function pretrainedMode(child, mode) {
  if (child === undefined) return undefined;
  if (child.error !== undefined && child.modes === undefined) return { error: child.error };
  const m = child.modes?.[mode];
  if (m === undefined) return { error: child.error ?? 'not measured' };
  return m;
}

function pretrainedRows(r) {
  const rows = [];
  for (const [model, entry] of Object.entries(r.pretrained ?? {})) {
    for (const [mode, label, part, goal] of PRETRAINED_MODES) {
      const nChild = entry.native?.[part];
      const tChild = entry.torch?.[part];
      const n = pretrainedMode(nChild, mode);
      const t = pretrainedMode(tChild, mode);
      for (const [name, m, c] of [
        ['native', n, nChild],
        ['PyTorch', t, tChild],
      ]) {
        if (m === undefined) continue;
        const layers = c?.config?.nLayers ?? '';
        const full = entry.native?.fwd?.config?.nLayers ?? entry.torch?.fwd?.config?.nLayers;
        if (m.error !== undefined) {
          rows.push([
            PRETRAINED_LABELS[model] ?? model,
            label,
            `${layers}`,
            name,
            'failed',
            '',
            '',
            '',
            '',
            '',
            '',
            '',
            m.error,
          ]);
          continue;
        }
        const x = name === 'native' && t?.tokensPerSec ? m.tokensPerSec / t.tokensPerSec : Number.NaN;
        const mem =
          name === 'native'
            ? `tf ${gib(m.tfPeakBytes)} / heap ${gib(m.wasmHeapBytes)}`
            : `RSS ${gib((m.maxRssMiB ?? Number.NaN) * 2 ** 20)}`;
        rows.push([
          PRETRAINED_LABELS[model] ?? model,
          label,
          `${layers}${full !== undefined && layers !== full ? ` of ${full}` : ''}`,
          name,
          f0(m.medianMs),
          `${m.reps}`,
          f0(m.tokensPerSec),
          f0(m.cpuMs),
          mem,
          name === 'native' ? ratio(x) : '',
          name === 'native' ? `≥ ${goal.toFixed(1)}×` : '',
          name === 'native' && Number.isFinite(x) ? mark(x >= goal) : '',
          name === 'native'
            ? `${c?.backend?.threads ?? '?'} thr`
            : `${c?.threads ?? '?'} thr, BLAS ${c?.blas?.kind ?? '?'} (${c?.openblasThreads ?? '?'} thr)`,
        ]);
      }
    }
  }
  return {
    head: [
      'model',
      'mode',
      'layers',
      'engine',
      'ms/call',
      'n',
      'tokens/s',
      'CPU ms',
      'peak GiB',
      '× PyTorch',
      'goal',
      'met',
      'note',
    ],
    align: 'llllrrrrrrlll',
    rows,
  };
}

function pretrainedContext(r) {
  const lines = [];
  const any = Object.values(r.pretrained ?? {})[0];
  const fwd = any?.native?.fwd?.config;
  const step = any?.native?.step?.config;
  lines.push(
    'Pretrained-size rows, random weights, float32, context 512, every sequence full length: Llama = SmolLM-135M-shaped ' +
      '(576 wide, 30 layers, 9 query / 3 kv heads of 64, SwiGLU 1536, RMSNorm, RoPE θ 10000, vocab 49,152, tied, no biases); ' +
      'GPT-2 small-shaped (768, 12 layers, 12 heads, tanh-GELU 3072, LayerNorm, learned positions, vocab 50,257, tied). ' +
      `LM forward = next-token loss over ${fwd?.batch ?? '?'} × 512 tokens; RM forward = gptLastHidden + a linear head on ` +
      `${fwd?.batch ?? '?'} sequences; RM pair step = Bradley-Terry on ${step?.pairs ?? '?'} pair(s) (${2 * (step?.pairs ?? 0)} × 512 tokens), ` +
      'gradients of every parameter, AdamW. ' +
      `n = timed calls after one warm-up (${r.pretrainedReps?.fwd ?? '?'} per forward, ${r.pretrainedReps?.step ?? '?'} per step), median kept.`,
  );
  lines.push(
    'The pair step runs on fewer blocks than the model has ("layers"), on both engines: at full depth its activations, ' +
      "gradients and AdamW state do not fit tfjs-wasm's 4 GiB heap (wasm32); --step-layers 30 (12) tries. " +
      'peak GiB: native = tf.memory() high-water mark during one call (tf.profile peakBytes, weights and optimizer state ' +
      'included; it counts a buffer shared by native no-copy ops once per tensor, so it can exceed the heap) / the wasm heap ' +
      'size after the calls (what the 4 GiB cap applies to); PyTorch = process max RSS. × PyTorch = native tokens/s ÷ ' +
      'PyTorch tokens/s in this run; goals from issue 15: ≥ 1.0× training, ≥ 1.5× scoring.',
  );
  if (r.pretrainedMemory) {
    lines.push(
      `Memory at start (free -g): ${r.pretrainedMemory.free ?? '?'} (available ${r.pretrainedMemory.availableGiB} GiB).`,
    );
  }
  if (r.pretrainedTorchNote) lines.push(r.pretrainedTorchNote);
  return lines;
}

function textTable({ head, align, rows }) {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i] ?? '').length)));
  const cell = (s, i) => (align[i] === 'r' ? String(s).padStart(w[i]) : String(s).padEnd(w[i]));
  const line = (r) => r.map(cell).join('  ').trimEnd();
  return [line(head), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}

function mdTable({ head, align, rows }) {
  const sep = [...align].map((a) => (a === 'r' ? '---:' : '---'));
  const line = (r) => `| ${r.map((c) => String(c ?? '').replace(/\|/g, '\\|')).join(' | ')} |`;
  return [line(head), line(sep), ...rows.map(line)].join('\n');
}

function headline(r) {
  const n = r.engines.native?.modes;
  if (n === undefined) return undefined;
  const rec = (mode) => n[mode]?.tokensPerSec / (n[mode]?.tokens / (RECORDED_TORCH_MS[mode] / 1000));
  const recorded =
    `against the recorded PyTorch+OpenBLAS figures: step ${ratio(rec('lm_step'))}, pair step ${ratio(rec('rm_step'))}, ` +
    `forward ${ratio(rec('lm_fwd'))}`;
  const t = r.engines.torch?.modes;
  if (t === undefined) return `Headline (no live PyTorch): native ${recorded}.`;
  const step = n.lm_step?.tokensPerSec / t.lm_step?.tokensPerSec;
  const pair = n.rm_step?.tokensPerSec / t.rm_step?.tokensPerSec;
  const fwd = n.lm_fwd?.tokensPerSec / t.lm_fwd?.tokensPerSec;
  const slowBlas =
    r.engines.torch.blas?.kind !== undefined && !/openblas|mkl|blis/.test(r.engines.torch.blas.kind);
  return (
    `Headline: native training step = ${ratio(step)} PyTorch tokens/s (goal ≥ 0.5× now, ≥ 1.0× target); ` +
    `reward-model pair step ${ratio(pair)}; LM forward ${ratio(fwd)}.` +
    (slowBlas
      ? ` WARNING: the live PyTorch runs on the ${r.engines.torch.blas.kind} BLAS (${r.engines.torch.blas.libs.join(', ')}), ` +
        'tens of times slower than OpenBLAS, so these live ratios flatter Quorum; ' +
        `${recorded} (the fair figure; install libopenblas0 to fix the live column).`
      : ` (${recorded}.)`)
  );
}

function context(r) {
  const lines = [];
  const e = r.engines.native ?? r.engines.wasm;
  lines.push(
    `Run ${r.started}${r.quick ? ' (--quick)' : ''}, ${r.minutes} min; git ${r.git ?? '?'}; ${r.machine.cores} × ${r.machine.cpu}; Node ${r.machine.node}.`,
  );
  lines.push(
    `Machine load (1-min loadavg on ${r.machine.cores} cores) at start ${r.machine.loadAtStart[0]}, during the run min ${r.load.min} / mean ${r.load.mean} / max ${r.load.max}` +
      (r.load.mean > r.machine.cores * 0.75
        ? ' — the machine was busy: absolute figures are inflated and ratios noisy; CPU ms is less sensitive to load than wall time.'
        : '.'),
  );
  if (e?.model !== undefined) {
    const m = e.model;
    lines.push(
      `Engines: reference model d=${m.dModel}, ${m.nLayers} layers, ${m.nHeads} heads, context ${m.contextLength}, vocab ${m.vocabSize}, ` +
        `batch ${m.batch} (${m.batch * m.contextLength} tokens/call; the pair step reads 2×), ${grouped(m.params)} params, tied LM head. ` +
        'ms/call = median of n calls after one warm-up; CPU ms = process CPU time per call (all threads); × = tokens/s ratio (above 1 = faster); ' +
        `"× PyTorch rec." compares with PyTorch+OpenBLAS figures recorded on a quiet machine of this kind (${Object.entries(
          RECORDED_TORCH_MS,
        )
          .map(([k, v]) => `${k} ${v} ms`)
          .join(', ')}), not measured in this run.`,
    );
  }
  if (r.engines.torch?.torch !== undefined) {
    lines.push(
      `PyTorch ${r.engines.torch.torch}, torch.set_num_threads(${r.engines.torch.threads}), OPENBLAS_NUM_THREADS=${r.engines.torch.openblasThreads}; ` +
        `params ${grouped(r.engines.torch.model.params)} (tfjs: ${grouped(e?.model?.params)}).`,
    );
  }
  if (r.torchNote) lines.push(r.torchNote);
  if (r.engines.native?.backend?.details) lines.push(`native: ${r.engines.native.backend.details}.`);
  return lines;
}

function archContext(r) {
  const s = r.architectures.single;
  if (s === undefined || s.error !== undefined) return [];
  const m = s.model;
  return [
    `Architectures on \`${s.backend}\`: micro preset (d=${m.dModel}, ${m.nLayers} layers, ${m.nHeads} heads, vocab ${m.vocabSize}), ` +
      `k = ${r.members} (single: k = 1), scoring a batch of ${s.batch} sequences of length ${s.seqLen}; lora rank 8 on q,k,v,o,fc,proj.`,
    'time × single = single seq/s ÷ its seq/s. tf peak = high-water mark of tf.memory().numBytes during one score() (tf.profile peakBytes) above the ' +
      'bytes before the model was built, weights included. RSS Δ = process RSS high-water mark (resourceUsage maxRSS) minus RSS before the model was built ' +
      '(wasm heap growth, never returned). "met" is an indication, not an assertion (≈ means within ±20%).',
  ];
}

export function renderText(r) {
  const out = [];
  out.push(...context(r), '');
  if (Object.keys(r.engines).length > 0) {
    out.push('== Engines ==', textTable(engineRows(r)));
    const h = headline(r);
    if (h) out.push('', h);
    out.push('');
  }
  if (Object.keys(r.architectures).length > 0) {
    out.push('== Architectures ==', ...archContext(r), textTable(archRows(r)), '');
  }
  if (Object.keys(r.pretrained ?? {}).length > 0) {
    out.push('== Pretrained-size ==', ...pretrainedContext(r), textTable(pretrainedRows(r)));
  }
  return out.join('\n');
}

export function renderMarkdown(r) {
  const out = ['# Quorum benchmark', '', ...context(r).map((l) => `${l}  `), ''];
  if (Object.keys(r.engines).length > 0) {
    out.push('## Engines', '', mdTable(engineRows(r)), '');
    const h = headline(r);
    if (h) out.push(`**${h}**`, '');
  }
  if (Object.keys(r.architectures).length > 0) {
    out.push('## Architectures', '', ...archContext(r).map((l) => `${l}  `), '', mdTable(archRows(r)), '');
  }
  if (Object.keys(r.pretrained ?? {}).length > 0) {
    out.push(
      '## Pretrained-size',
      '',
      ...pretrainedContext(r).map((l) => `${l}  `),
      '',
      mdTable(pretrainedRows(r)),
      '',
    );
  }
  return out.join('\n');
}
