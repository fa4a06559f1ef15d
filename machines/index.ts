export * from './collector-lifecycle.js'
export * from './supervisor.js'
export * from './leader-election.js'
export * from './nats-connection.js'
