export * from './collector.js'
export * from './config.js'
export * from './events.js'
