export type { Processor, ProcessorContext, Router } from './processor.js'
export { isRouter } from './processor.js'
export {
  ProcessorChain,
  ProcessorChainError,
  ProcessorCounters,
  type ChainResult,
  type ProcessorSourceCounts,
  type ProcessorStageStatistics,
} from './chain.js'
export {
  dropFieldsProcessor,
  EDITABLE_ROOTS,
  enrichProcessor,
  filterProcessor,
  renameFieldsProcessor,
  routeProcessor,
  sampleProcessor,
  type DropFieldsOptions,
  type FilterOptions,
  type RateLimitKey,
  type RenameFieldsOptions,
  type RouteOptions,
  type RouteRule,
  type SampleOptions,
} from './builtin.js'
export { compileMatch, type EventMatch } from './match.js'
export { compileExpression, ExpressionError, type EventPredicate } from './expression.js'
export {
  buildProcessorChain,
  EventMatchSchema,
  processorNames,
  processorProblems,
  ProcessorSpecSchema,
  ProcessorsSchema,
  type BuildOptions,
  type ProcessorSpec,
} from './spec.js'
export * from './correlate/index.js'
