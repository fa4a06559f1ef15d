export { BUILTIN_CHAINS, oomKillChain, vethSandboxChain } from './chains.js'
export { systemdExitChain } from './systemd-exit.js'
export {
  type ChainMemberEvent,
  type ChainRule,
  type ChainStep,
  CorrelationEngine,
  type CorrelationCounters,
  type CorrelationOptions,
  correlationKey,
} from './engine.js'
export { builtinChain, CORRELATE_DEFAULTS, type CorrelateOptions, correlateProcessor } from './processor.js'
