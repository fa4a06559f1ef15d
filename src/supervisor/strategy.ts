/**
 * OTP restart strategies: which collectors restart along with a failed one.
 * - one_for_one: only the failed one.
 * - one_for_all: every collector.
 * - rest_for_one: the failed one and those registered (started) after it.
 * The supervisor stops the group in reverse start order and starts it again in start order.
 */
export type RestartStrategy = 'one_for_one' | 'one_for_all' | 'rest_for_one'
export const RESTART_STRATEGIES: readonly RestartStrategy[] = ['one_for_one', 'one_for_all', 'rest_for_one']

/** Siblings (not the failed collector itself) to restart, in start order. */
export function siblingsToRestart(strategy: RestartStrategy, order: readonly string[], failed: string): string[] {
  return restartGroup(strategy, order, failed).filter((n) => n !== failed)
}

/** Every collector a failure of `failed` restarts, itself included, in start order. */
export function restartGroup(strategy: RestartStrategy, order: readonly string[], failed: string): string[] {
  const i = order.indexOf(failed)
  if (i < 0) return [failed]
  switch (strategy) {
    case 'one_for_one':
      return [failed]
    case 'one_for_all':
      return [...order]
    case 'rest_for_one':
      return order.slice(i)
  }
}
