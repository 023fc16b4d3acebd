export { buildProgram } from './program.js';
export { createContext, startCompute, type CliContext, type GlobalOptions } from './context.js';
export { loadPlugin, resolvePluginEntry, type LoadedPlugin } from './plugins.js';
export { readProjectConfig, ProjectConfigSchema, type ProjectConfig } from './config-file.js';
export { infoReport, type InfoReport } from './commands/info.js';
export { builtinModules } from './modules.js';
