/**
 * Why events could not be delivered (each is counted, none is silent). Apart from the output so
 * the agent's metrics can name them without loading the NATS client when no NATS output runs.
 */
export const NATS_FAILURE_REASONS = ['rejected', 'too_large', 'retries_exhausted', 'shutdown'] as const
export type NatsFailureReason = (typeof NATS_FAILURE_REASONS)[number]
