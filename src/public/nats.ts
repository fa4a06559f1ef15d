/**
 * `tapio-collector-manager/nats`: publish the merged event stream to NATS JetStream (per-event
 * subjects, bounded in-flight window, deduplication ids) and read it back through a durable
 * consumer that resumes where it stopped.
 *
 *   const out = new NatsOutput(parseNatsOutputConfig({ servers: ['nats://127.0.0.1:4222'] }), { node: 'n1' })
 *   out.start()
 *   for await (const batch of mgr.batches()) await out.write(batch)
 */
import '../peers.js'

export * from '../outputs/nats/index.js'
