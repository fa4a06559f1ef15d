export * from './collector-lifecycle.js'
export * from './supervisor.js'
