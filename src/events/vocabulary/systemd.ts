import { lazySchema } from '../../core/lazy-schema.js'
import { registerEventData } from '../families.js'
import { TimestampNsSchema } from '../schema.js'

const Int = lazySchema((Schema) => Schema.Number.check(Schema.isInt()))

/** Data of every systemd.unit.<transition> event. */
export const SystemdUnitDataSchema = lazySchema((Schema) => Schema.Struct({
  unit: Schema.String,
  /** The suffix of the unit name: service, socket, timer... */
  unitType: Schema.String,
  activeState: Schema.String,
  subState: Schema.String,
  oldActiveState: Schema.optional(Schema.String),
  oldSubState: Schema.optional(Schema.String),
  /** Service Result: success, exit-code, signal, core-dump, timeout, start-limit-hit... */
  result: Schema.optional(Schema.String),
  /**
   * The main process: MainPID while it runs; once it has ended, the pid of the one that did
   * (ExecMainPID), so a failure names the process whose exit it reports.
   */
  mainPid: Schema.optional(Int),
  /** How the main process ended: exited, killed, dumped (from ExecMainCode). */
  exitCode: Schema.optional(Schema.String),
  /** Exit status, or the signal number when killed/dumped (ExecMainStatus). */
  exitStatus: Schema.optional(Int),
  /** When the main process started (ExecMainStartTimestamp), epoch nanoseconds like `timestamp`. */
  mainStartedAt: Schema.optional(TimestampNsSchema),
  /** When systemd saw the main process exit (ExecMainExitTimestamp), epoch nanoseconds. */
  mainExitedAt: Schema.optional(TimestampNsSchema),
  /** NRestarts: automatic restarts since the unit was loaded. */
  restartCount: Schema.optional(Int),
  /** How many restarts this event stands for (more than 1 after a reconnect). */
  newRestarts: Schema.optional(Int),
  /** The unit failed and systemd will restart it (SubState auto-restart). */
  willRestart: Schema.optional(Schema.Boolean),
  /** Derived from comparing a fresh snapshot with the last known one after a reconnect. */
  resync: Schema.optional(Schema.Boolean),
}))
export type SystemdUnitData = typeof SystemdUnitDataSchema.Type

/** systemd.unit.added / systemd.unit.removed: the unit object was loaded or unloaded. */
export const SystemdUnitPresenceDataSchema = lazySchema((Schema) => Schema.Struct({
  unit: Schema.String,
  unitType: Schema.String,
  activeState: Schema.optional(Schema.String),
  subState: Schema.optional(Schema.String),
  resync: Schema.optional(Schema.Boolean),
}))
export type SystemdUnitPresenceData = typeof SystemdUnitPresenceDataSchema.Type

export const SystemdJobDataSchema = lazySchema((Schema) => Schema.Struct({
  jobId: Int,
  unit: Schema.String,
  unitType: Schema.String,
  /** JobRemoved only: done, canceled, timeout, failed, dependency, skipped. */
  result: Schema.optional(Schema.String),
}))
export type SystemdJobData = typeof SystemdJobDataSchema.Type

export const SystemdManagerReloadingDataSchema = lazySchema((Schema) => Schema.Struct({
  /** true when a daemon-reload begins, false when it has finished. */
  active: Schema.Boolean,
}))
export type SystemdManagerReloadingData = typeof SystemdManagerReloadingDataSchema.Type

export const UNIT_TRANSITIONS = ['started', 'stopped', 'failed', 'restarted', 'reloaded', 'state_changed'] as const
export type UnitTransition = (typeof UNIT_TRANSITIONS)[number]

export const SYSTEMD_EVENT_TYPES = [
  ...UNIT_TRANSITIONS.map((t) => `systemd.unit.${t}` as const),
  'systemd.unit.added',
  'systemd.unit.removed',
  'systemd.job.new',
  'systemd.job.removed',
  'systemd.manager.reloading',
] as const

declare module '../families.js' {
  interface EventDataMap {
    'systemd.unit.started': SystemdUnitData
    'systemd.unit.stopped': SystemdUnitData
    'systemd.unit.failed': SystemdUnitData
    'systemd.unit.restarted': SystemdUnitData
    'systemd.unit.reloaded': SystemdUnitData
    'systemd.unit.state_changed': SystemdUnitData
    'systemd.unit.added': SystemdUnitPresenceData
    'systemd.unit.removed': SystemdUnitPresenceData
    'systemd.job.new': SystemdJobData
    'systemd.job.removed': SystemdJobData
    'systemd.manager.reloading': SystemdManagerReloadingData
  }
}

for (const t of UNIT_TRANSITIONS) registerEventData(`systemd.unit.${t}`, SystemdUnitDataSchema)
registerEventData('systemd.unit.added', SystemdUnitPresenceDataSchema)
registerEventData('systemd.unit.removed', SystemdUnitPresenceDataSchema)
registerEventData('systemd.job.new', SystemdJobDataSchema)
registerEventData('systemd.job.removed', SystemdJobDataSchema)
registerEventData('systemd.manager.reloading', SystemdManagerReloadingDataSchema)
