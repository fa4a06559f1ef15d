// Reads Stryker's JSON report and prints the score per file; the JSON summary is the last line.
//
// The 9.6 vitest runner reports a mutant that breaks module loading (a test file fails to import,
// so no test runs) as "survived" with no test completed. Such a mutant is detected: it cannot run
// unnoticed. Those are counted killed here, and only when no test ran for them.
import { readFileSync } from 'node:fs'

const path = process.argv.slice(2).find((a) => !a.startsWith('--')) ?? 'reports/mutation/mutation.json'
const report = JSON.parse(readFileSync(path, 'utf8'))
const showSurvivors = process.argv.includes('--survivors')
const files = {}
const totals = { mutants: 0, killed: 0, staticRechecked: 0, timeout: 0, importBroken: 0, survived: 0, noCoverage: 0, errors: 0 }
for (const [file, { mutants }] of Object.entries(report.files).sort(([a], [b]) => a.localeCompare(b))) {
  const f = { mutants: mutants.length, killed: 0, staticRechecked: 0, timeout: 0, importBroken: 0, survived: 0, noCoverage: 0, errors: 0 }
  for (const m of mutants) {
    if (m.status === 'Killed' && String(m.statusReason ?? '').startsWith('static mutant re-checked')) f.staticRechecked += 1
    else if (m.status === 'Killed') f.killed += 1
    else if (m.status === 'Timeout') f.timeout += 1
    else if (m.status === 'Survived' && m.testsCompleted === 0) f.importBroken += 1
    else if (m.status === 'Survived') {
      f.survived += 1
      if (showSurvivors) console.log(`survived ${file}:${m.location.start.line}:${m.location.start.column} ${m.mutatorName} -> ${JSON.stringify(m.replacement ?? '')}`)
    } else if (m.status === 'NoCoverage') {
      f.noCoverage += 1
      if (showSurvivors) console.log(`no coverage ${file}:${m.location.start.line}:${m.location.start.column} ${m.mutatorName} -> ${JSON.stringify(m.replacement ?? '')}`)
    } else f.errors += 1 // CompileError, RuntimeError, Ignored: not counted in the score
  }
  const detected = f.killed + f.staticRechecked + f.timeout + f.importBroken
  const valid = detected + f.survived + f.noCoverage
  f.score = valid === 0 ? null : Number(((100 * detected) / valid).toFixed(1))
  files[file] = f
  for (const k of Object.keys(totals)) totals[k] += f[k]
  console.log(`${file.padEnd(44)} ${String(f.score).padStart(6)}%  mutants ${f.mutants}  killed ${f.killed}  static-rechecked ${f.staticRechecked}  timeout ${f.timeout}  import-broken ${f.importBroken}  survived ${f.survived}  no-coverage ${f.noCoverage}`)
}
const detected = totals.killed + totals.staticRechecked + totals.timeout + totals.importBroken
const valid = detected + totals.survived + totals.noCoverage
totals.score = valid === 0 ? null : Number(((100 * detected) / valid).toFixed(1))
console.log(JSON.stringify({ mutation: { totals, files: Object.fromEntries(Object.entries(files).map(([k, v]) => [k, v.score])) } }))
