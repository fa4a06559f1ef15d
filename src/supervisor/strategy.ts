/**
 * OTP restart strategies: which siblings restart along with a failed collector.
 * - one_for_one: only the failed one.
 * - one_for_all: every other collector too.
 * - rest_for_one: the collectors registered after the failed one.
 */
export type RestartStrategy = 'one_for_one' | 'one_for_all' | 'rest_for_one'
export const RESTART_STRATEGIES: readonly RestartStrategy[] = ['one_for_one', 'one_for_all', 'rest_for_one']

/** Siblings (not the failed collector itself) to restart, in registration order. */
export function siblingsToRestart(strategy: RestartStrategy, order: readonly string[], failed: string): string[] {
  switch (strategy) {
    case 'one_for_one':
      return []
    case 'one_for_all':
      return order.filter((n) => n !== failed)
    case 'rest_for_one': {
      const i = order.indexOf(failed)
      return i < 0 ? [] : order.slice(i + 1)
    }
  }
}
