// Re-runs the survived *static* mutants of a Stryker JSON report by hand.
//
// A static mutant changes code that runs when a module is loaded (an XState machine definition, a
// constant). With vitest 4.1 the 9.6 vitest runner does not re-evaluate modules per mutant, so a
// static mutant is never active during its run: it "survives" although its tests ran and passed
// against the original code. This script applies each such mutant to a scratch copy of the
// project, runs the mutation test set (vitest.mutate.config.ts) there, and records it killed when
// that run fails (a failing test, or a test file that cannot load). The result goes back into the
// report (status "Killed", statusReason "static mutant re-checked by hand").
//
//   node scripts/mutation-static-recheck.mjs reports/mutation/mutation.json
//
// With MUTATION_TESTS set (vitest.mutate.config.ts), only those test files run per mutant.
import { spawnSync } from 'node:child_process'
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const reportPath = process.argv[2] ?? 'reports/mutation/mutation.json'
const report = JSON.parse(readFileSync(reportPath, 'utf8'))
const root = process.cwd()
const scratch = mkdtempSync(join(tmpdir(), 'mutation-static-'))
for (const d of ['src', 'machines', 'test', 'examples', 'bench']) cpSync(join(root, d), join(scratch, d), { recursive: true })
for (const f of ['package.json', 'tsconfig.json', 'vitest.mutate.config.ts']) cpSync(join(root, f), join(scratch, f))
symlinkSync(join(root, 'node_modules'), join(scratch, 'node_modules'))

/** Offset in `text` of a 1-based line and column. */
function offset(text, { line, column }) {
  let at = 0
  for (let l = 1; l < line; l++) at = text.indexOf('\n', at) + 1
  return at + column - 1
}

let rechecked = 0
let killed = 0
try {
  for (const [file, { mutants }] of Object.entries(report.files)) {
    const original = readFileSync(join(root, file), 'utf8')
    for (const m of mutants) {
      if (m.status !== 'Survived' || !m.static) continue
      const from = offset(original, m.location.start)
      const to = offset(original, m.location.end)
      writeFileSync(join(scratch, file), original.slice(0, from) + m.replacement + original.slice(to))
      const run = spawnSync('npx', ['--no-install', 'vitest', 'run', '--config', 'vitest.mutate.config.ts', '--bail', '1'], {
        cwd: scratch,
        encoding: 'utf8',
        env: { ...process.env, MODEL_RUNS: process.env.MODEL_RUNS ?? '100' },
        timeout: 600_000,
      })
      rechecked += 1
      if (run.status !== 0) {
        killed += 1
        m.status = 'Killed'
        m.statusReason = 'static mutant re-checked by hand: the mutation test set fails'
      }
      console.error(`${run.status !== 0 ? 'killed  ' : 'SURVIVED'} ${file}:${m.location.start.line}:${m.location.start.column} ${m.mutatorName} -> ${JSON.stringify(m.replacement)}`)
    }
    writeFileSync(join(scratch, file), original)
  }
} finally {
  rmSync(scratch, { recursive: true, force: true })
}
writeFileSync(reportPath, JSON.stringify(report))
console.log(JSON.stringify({ staticRecheck: { rechecked, killed } }))
