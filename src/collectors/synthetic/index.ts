export * from './collector.js'
export * from './config.js'
