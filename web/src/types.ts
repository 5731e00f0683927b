/**
 * The control-plane API's JSON bodies the dashboard reads: the subset of the OpenAPI components it uses
 * (GET /openapi.json; src/control/api/schemas.ts is the source). Written out here because web/ imports nothing
 * of the server's code (docs/architecture.md).
 */

export type AccessLevel = 'read' | 'write' | 'admin' | 'platform';

export interface WhoAmI {
  name: string;
  role: string;
  home: string;
  tenant: string;
  access: AccessLevel[];
}

export interface Info {
  version: string;
  runtime: 'process' | 'docker' | 'swarm';
  gatewayUrl: string;
  apiUrl?: string;
}

export interface TrafficEntry {
  revision: number;
  percent: number;
  shadow?: number;
}

export type Strategy =
  | { kind: 'rolling'; maxSurge?: number }
  | { kind: 'canary'; steps: Array<{ percent: number; pauseMs?: number }> };

export interface Rollout {
  deployment: string;
  from: number;
  to: number;
  phase: 'progressing' | 'paused' | 'aborting' | 'succeeded' | 'aborted';
  percent: number;
  strategy: Strategy;
  step: number;
  startedAt: number;
  updatedAt: number;
  message: string;
}

export interface Replica {
  id: string;
  name: string;
  revision: number;
  index: number;
  state: 'starting' | 'ready' | 'failed' | 'exited';
  url: string;
  startedAt: number;
  exitCode?: number;
  restarts: number;
  node?: string;
}

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  since: number;
}

export interface RevisionStatus {
  revision: number;
  desired: number;
  ready: number;
  percent: number;
  problem: { reason: string; message: string; fatal: boolean; since: number } | null;
  replicaLimit: number | null;
}

export interface DeploymentView {
  name: string;
  model: string;
  versionRef: string;
  replicas: number;
  env: Record<string, string>;
  public: boolean;
  scaling: Record<string, unknown> | null;
  revision: number;
  createdAt: number;
  updatedAt: number;
  tenant: string;
  strategy: Strategy;
  traffic: TrafficEntry[];
  trafficTarget: { entries: TrafficEntry[]; requestedAt: number } | null;
  revisionStatus: RevisionStatus[];
  runtime: 'process' | 'docker' | 'swarm';
  rollout: Rollout | null;
  replicaStatus: Replica[];
  conditions: Condition[];
  lastCrash: { replica: string; revision: number; exitCode?: number; at: number; logTail: string[] } | null;
  lastColdStart: { revision: number; replica: string; at: number; totalMs: number; held: number } | null;
  endpoint: string;
}

export interface Revision {
  deployment: string;
  number: number;
  specHash: string;
  image: string;
  replicas: number;
  createdAt: number;
  versionRef: string;
  spec: { model: string; version: string; env: Record<string, string> };
}

export interface EventRecord {
  id: number;
  deployment?: string;
  tenant?: string;
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
  at: number;
}

export interface DescribeView extends DeploymentView {
  revisions: Revision[];
  events: EventRecord[];
}

export interface ModelVersion {
  model: string;
  version: string;
  image: string | null;
  artifact: string | null;
  spec: { servedName?: string; modelVersion?: string };
  createdAt: number;
}

export interface Model {
  name: string;
  createdAt: number;
  versions: ModelVersion[];
  aliases: Record<string, string>;
}

export interface LogLine {
  at: number;
  replica: string;
  revision: number;
  stream: 'stdout' | 'stderr';
  line: string;
}

export interface AuditEntry {
  seq: number;
  at: string;
  actor: string;
  role?: string;
  tenant: string;
  action: string;
  object: string;
  outcome: 'allowed' | 'denied' | 'failed';
  status?: number;
  code?: string;
  source: string;
  requestId: string;
}

/** Contract A (GET /v1/deployments/{name}/metrics): one step of one revision. */
export interface MetricsPoint {
  t: number;
  rps: number;
  p50: number | null;
  p99: number | null;
  codes: Record<string, number>;
  replicas: number;
  batchSize: number | null;
  queueDepth: number | null;
  coldStarts: number;
}

export interface MetricsHistory {
  deployment: string;
  stepMs: number;
  windowMs: number;
  source: 'scraped' | 'gateway-reports';
  revisions: Array<{ revision: number; points: MetricsPoint[] }>;
}
