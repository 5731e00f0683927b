/**
 * The route table: what the control plane (src/control/routing.ts builds it) hands the gateway
 * (src/gateway, `setRoutes`). Defined here, once, because neither module imports the other.
 */

export interface RouteReplica {
  id: string;
  url: string;
  /** in the router only when true */
  ready: boolean;
}

export interface RouteRevision {
  revision: number;
  /** share of live traffic 0..100; the revisions of a deployment sum to 100 (or all 0 = nothing serves) */
  percent: number;
  /** percent 0..100 of requests mirrored to this revision (answers discarded, recorded in metrics + logs) */
  shadow: number;
  /** the model name the replicas of this revision serve (from their ferry.yaml); the gateway rewrites the path */
  servedName: string;
  replicas: RouteReplica[];
}

export interface RouteDeployment {
  name: string;
  revisions: RouteRevision[];
}

export interface RouteTable {
  deployments: RouteDeployment[];
}
