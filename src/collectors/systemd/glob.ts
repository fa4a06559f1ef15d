/** Unit name globs as systemctl accepts them: `*`, `?` and `[...]` classes; everything else literal. */
export function globToRegExp(glob: string): RegExp {
  let re = '^'
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string
    if (c === '*') re += '.*'
    else if (c === '?') re += '.'
    else if (c === '[') {
      const end = glob.indexOf(']', i + 2)
      if (end === -1) re += '\\['
      else {
        let body = glob.slice(i + 1, end)
        if (body.startsWith('!')) body = `^${body.slice(1)}`
        re += `[${body.replace(/\\/g, '\\\\')}]`
        i = end
      }
    } else re += c.replace(/[.+^${}()|\\\]]/g, '\\$&')
  }
  return new RegExp(`${re}$`)
}

export interface UnitFilter {
  (unitName: string): boolean
}

/** A unit passes when its type is wanted, it matches an include glob and no exclude glob. */
export function makeUnitFilter(opts: {
  readonly include: readonly string[]
  readonly exclude: readonly string[]
  readonly unitTypes: readonly string[]
}): UnitFilter {
  const include = opts.include.map(globToRegExp)
  const exclude = opts.exclude.map(globToRegExp)
  const types = new Set(opts.unitTypes)
  return (name) =>
    types.has(unitTypeOf(name)) && include.some((r) => r.test(name)) && !exclude.some((r) => r.test(name))
}

/** `foo@bar.service` -> `service`. */
export function unitTypeOf(name: string): string {
  const dot = name.lastIndexOf('.')
  return dot === -1 ? '' : name.slice(dot + 1)
}
