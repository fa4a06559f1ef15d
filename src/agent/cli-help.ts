/** The CLI's commands, their options and help texts (`tapio-agent help`, `tapio-agent <command> --help`). */

export interface OptionSpec {
  readonly type: 'string' | 'boolean'
  readonly short?: string
  readonly multiple?: boolean
}

export interface CommandSpec {
  readonly name: string
  readonly usage: string
  readonly summary: string
  /** Shown by `<command> --help` below the usage line. */
  readonly details: string
  readonly options: Readonly<Record<string, OptionSpec>>
}

const remote = {
  url: { type: 'string' },
  token: { type: 'string' },
} as const

export const COMMANDS: readonly CommandSpec[] = [
  {
    name: 'run',
    usage: 'tapio-agent [run] [--config agent.yaml] [--http-port N] [--output FILE] [--log-format json|text]',
    summary: 'start every collector this machine supports; events as NDJSON on stdout (or --output)',
    details: `  -c, --config FILE     the configuration (YAML); without it the embedded default runs every
                        collector kind with enabled: auto
  --http-port N         overrides http.port (0 = any free port; the URL is logged)
  -o, --output FILE     write events to FILE (rotated) instead of stdout; its directory is created
  --log-format F        json (default) or text; overrides log.format

  Logs go to stderr, one line per supervision fact (failures, restarts, give-ups...).
  SIGTERM/SIGINT stop gracefully (a second one forces); SIGHUP reloads --config.
  A closed stdout (\`tapio-agent | head\`) stops the agent gracefully.`,
    options: {
      config: { type: 'string', short: 'c' },
      'http-port': { type: 'string' },
      output: { type: 'string', short: 'o' },
      'log-format': { type: 'string' },
    },
  },
  {
    name: 'status',
    usage: 'tapio-agent status [--url URL] [--token T] [--json] [--watch [--interval SECONDS]]',
    summary: 'ask a running agent for its collectors, states, rates, restarts, drops and reasons',
    details: `  --url URL             the agent (default http://127.0.0.1:8497)
  --token T             bearer token, when the agent requires one
  --json                print /api/status as JSON
  -w, --watch           repaint until interrupted; keeps trying (with backoff) while the agent is away
  --interval SECONDS    how often --watch asks (default 2)

  Exit code 0, or 1 when the agent cannot be reached.`,
    options: { ...remote, json: { type: 'boolean' }, watch: { type: 'boolean', short: 'w' }, interval: { type: 'string' } },
  },
  {
    name: 'tail',
    usage: 'tapio-agent tail [--url URL] [--token T] [--source S] [--type T] [--severity LEVEL] [--format json|pretty|logfmt] [--limit N]',
    summary: "follow a running agent's live events (/events)",
    details: `  --url URL             the agent (default http://127.0.0.1:8497)
  --token T             bearer token, when the agent requires one
  --source S            only these collectors (comma-separated or repeated); an unknown name is warned about
  --type T              only these event types; a trailing * matches a prefix (k8s.pod.*)
  --severity LEVEL      this severity and above (debug, info, warning, error, critical)
  --format F            json (NDJSON, default), pretty (one readable line) or logfmt
  -n, --limit N         stop after N events

  When the agent goes away, tail says so on stderr and reconnects with backoff (events published
  meanwhile are not replayed). Exit code 0 (interrupted, --limit reached, stdout closed), 1 when
  the agent cannot be reached at first or refuses the request.`,
    options: {
      ...remote,
      source: { type: 'string', multiple: true },
      type: { type: 'string', multiple: true },
      severity: { type: 'string' },
      format: { type: 'string' },
      limit: { type: 'string', short: 'n' },
    },
  },
  {
    name: 'probe',
    usage: 'tapio-agent probe ready|live [--url URL] [--token T]',
    summary: 'exit 0 when a running agent answers /readyz (ready) or /healthz (live) with 200, else 1',
    details: `  For Kubernetes exec probes. \`node dist/src/agent/probe.js ready\` is the same, and cheaper
  (it loads nothing of the agent). Exit code 2 on bad usage.`,
    options: remote,
  },
  {
    name: 'consume',
    usage: 'tapio-agent consume --durable NAME [--servers URL,URL] [--filter SUBJECT] [--stream NAME] [--ack-wait-ms N] [--config agent.yaml]',
    summary: 'read the events agents published to NATS JetStream (durable consumer), as NDJSON on stdout',
    details: `  --durable NAME        the consumer's name on the server; a restart with the same name resumes
                        where it stopped (only what stdout took is acknowledged)
  --servers URLS        NATS servers (default: outputs.nats.servers of --config, else nats://127.0.0.1:4222)
  --filter SUBJECT      a subject filter (default: every event of the stream)
  --stream NAME         the stream (default: outputs.nats.stream.name of --config)
  --ack-wait-ms N       redelivery timeout of unacknowledged events
  -c, --config FILE     take servers, stream, subject prefix and credentials from this agent config`,
    options: {
      durable: { type: 'string' },
      servers: { type: 'string' },
      filter: { type: 'string' },
      stream: { type: 'string' },
      'ack-wait-ms': { type: 'string' },
      config: { type: 'string', short: 'c' },
    },
  },
  {
    name: 'check-config',
    usage: 'tapio-agent check-config --config agent.yaml',
    summary: 'validate a config file: every problem in one pass (exit 0 valid, 2 invalid)',
    details: `  -c, --config FILE     the file to check (without it, the embedded default)

  Problems name their path (collectors.units.include[2]); unknown keys get a "did you mean".`,
    options: { config: { type: 'string', short: 'c' } },
  },
  {
    name: 'config-schema',
    usage: 'tapio-agent config-schema [--out FILE]',
    summary: 'print the JSON Schema (Draft 2020-12) of the config file, for editors and validators',
    details: `  --out FILE            write it to FILE instead of stdout`,
    options: { out: { type: 'string' } },
  },
]

export const GLOBAL_OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'V' },
} as const

export function commandSpec(name: string): CommandSpec | undefined {
  return COMMANDS.find((c) => c.name === name)
}

export function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 2
  return `tapio-agent: supervised observability collectors, one unified event stream

usage:
${COMMANDS.map((c) => `  ${c.usage}`).join('\n')}
  tapio-agent help [COMMAND] | --help | --version

${COMMANDS.map((c) => `${c.name.padEnd(width)} ${c.summary}`).join('\n')}

\`tapio-agent COMMAND --help\` describes each command's options.
`
}

export function commandHelp(spec: CommandSpec): string {
  return `usage: ${spec.usage}

${spec.summary}

${spec.details}
`
}
