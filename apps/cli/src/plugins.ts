/**
 * Loading plugins: `--plugin <package or path>` (repeatable) and `"plugins"` in quorum.config.json.
 * A plugin's entry default-exports an inversify `ContainerModule` (or a function returning one).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError, type ContainerModule } from '@quorum/core';

export interface LoadedPlugin {
  /** As the user wrote it. */
  readonly spec: string;
  /** The file that was imported. */
  readonly entry: string;
  /** Package name (from its package.json) or the path. */
  readonly name: string;
  readonly module: ContainerModule;
}

interface PackageJson {
  name?: string;
  main?: string;
  exports?: unknown;
}

function exportsEntry(pkg: PackageJson): string | undefined {
  const exp = pkg.exports;
  if (typeof exp === 'string') return exp;
  if (exp !== null && typeof exp === 'object') {
    const dot = (exp as Record<string, unknown>)['.'] ?? exp;
    if (typeof dot === 'string') return dot;
    if (dot !== null && typeof dot === 'object') {
      const d = dot as Record<string, unknown>;
      for (const key of ['import', 'default', 'node'])
        if (typeof d[key] === 'string') return d[key] as string;
    }
  }
  return pkg.main;
}

/** Finds a package folder by name, walking up from `from` through node_modules folders. */
function findPackageDir(name: string, from: string): string | undefined {
  let dir = path.resolve(from);
  for (;;) {
    const candidate = path.join(dir, 'node_modules', name);
    if (existsSync(path.join(candidate, 'package.json'))) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/** Resolves a plugin spec (path to a file or folder, or a package name) to the file to import. */
export function resolvePluginEntry(spec: string, cwd: string): { entry: string; name: string } {
  const looksLikePath = spec.startsWith('.') || spec.startsWith('/') || existsSync(path.resolve(cwd, spec));
  let dir: string | undefined;
  if (looksLikePath) {
    const target = path.resolve(cwd, spec);
    if (!existsSync(target)) {
      throw new ConfigError(`plugin path ${target} does not exist`, {
        location: { field: 'plugins' },
        hint: 'check the path given to --plugin',
      });
    }
    if (statSync(target).isFile()) return { entry: target, name: spec };
    dir = target;
  } else {
    dir = findPackageDir(spec, cwd);
    if (dir === undefined) {
      throw new ConfigError(`plugin package "${spec}" is not installed`, {
        location: { field: 'plugins' },
        hint: `install it (npm install ${spec}) or pass a path to its folder`,
      });
    }
  }
  const pkgFile = path.join(dir, 'package.json');
  if (!existsSync(pkgFile)) {
    throw new ConfigError(`plugin folder ${dir} has no package.json`, {
      location: { field: 'plugins' },
      hint: 'pass the plugin package folder, or the built entry file itself',
    });
  }
  const pkg = JSON.parse(readFileSync(pkgFile, 'utf8')) as PackageJson;
  const rel = exportsEntry(pkg);
  if (rel === undefined) {
    throw new ConfigError(`plugin ${pkg.name ?? dir} has no "exports" or "main" entry in its package.json`, {
      location: { file: pkgFile, field: 'exports' },
      hint: 'add "exports": { ".": { "import": "./dist/index.js" } }',
    });
  }
  const entry = path.resolve(dir, rel);
  if (!existsSync(entry)) {
    throw new ConfigError(`plugin ${pkg.name ?? dir}: entry ${entry} does not exist`, {
      location: { file: pkgFile, field: 'exports' },
      hint: 'build the plugin first (npm run build in its folder)',
    });
  }
  return { entry, name: pkg.name ?? spec };
}

function isContainerModule(value: unknown): value is ContainerModule {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as { load?: unknown }).load === 'function' &&
    'id' in value
  );
}

/** Imports a plugin and returns its ContainerModule. Errors name the plugin and keep the cause. */
export async function loadPlugin(spec: string, cwd: string = process.cwd()): Promise<LoadedPlugin> {
  const { entry, name } = resolvePluginEntry(spec, cwd);
  let mod: { default?: unknown };
  try {
    mod = (await import(pathToFileURL(entry).href)) as { default?: unknown };
  } catch (cause) {
    throw new ConfigError(`plugin ${name} failed to load: ${(cause as Error).message}`, {
      location: { file: entry, field: 'plugins' },
      hint: 'fix the error above in the plugin, or remove it from --plugin / "plugins"',
      cause,
    });
  }
  let value = mod.default;
  if (typeof value === 'function' && !isContainerModule(value)) value = (value as () => unknown)();
  if (!isContainerModule(value)) {
    throw new ConfigError(`plugin ${name} must default-export an inversify ContainerModule`, {
      location: { file: entry, field: 'default export' },
      hint: 'export default new ContainerModule((options) => { ... }) — see docs/guides/aggregation-rule.md',
    });
  }
  return { spec, entry, name, module: value };
}
