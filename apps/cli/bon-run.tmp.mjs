const { Command } = await import('commander');
const { registerBestOfN } = await import('./dist/commands/best-of-n.js');
const p = new Command('quorum').option('--backend <name>'); registerBestOfN(p);
const t0 = Date.now();
await p.parseAsync(['node', 'quorum', ...process.argv.slice(2)]);
process.stderr.write(`elapsed ${((Date.now() - t0) / 1000).toFixed(1)} s, rss ${(process.memoryUsage().rss / 1e6).toFixed(0)} MB\n`);
