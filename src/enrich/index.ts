export { createEnricher, type EnricherOptions, type EnrichmentCounts, Enricher } from './enricher.js'
export { type MetadataSlot, MetadataHub } from './hub.js'
export {
  bareContainerId,
  type Family,
  familyOf,
  HIT_REASONS,
  type HitReason,
  localAddressOf,
  lookupPod,
  MISS_REASONS,
  type MetadataStatus,
  type MissReason,
  type PodHit,
  type PodLookup,
  type PodMetadataSource,
  podContext,
  processIdentityTrusted,
} from './lookup.js'
