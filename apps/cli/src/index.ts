export { type InfoReport, infoReport } from './commands/info.js';
export { type ProjectConfig, ProjectConfigSchema, readProjectConfig } from './config-file.js';
export { type CliContext, createContext, type GlobalOptions, startCompute } from './context.js';
export { builtinModules } from './modules.js';
export { type LoadedPlugin, loadPlugin, resolvePluginEntry } from './plugins.js';
export { buildProgram } from './program.js';
