/**
 * The event vocabulary: typed `data` per event family, each registered for `validateEvent` as
 * this module loads. It names event types, not collectors: collectors import what they emit from
 * here, and `src/events` imports nothing from `src/collectors`.
 */
export * from './kubernetes.js'
export * from './network.js'
export * from './kernel.js'
export * from './systemd.js'
export * from './correlation.js'
