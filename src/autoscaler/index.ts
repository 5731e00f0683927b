/** Autoscaling (issue 11): settings, bucketed windows and Ferry's pure scaling policy. */

export { derivedTarget, type ReplicaCapacity } from './capacity.ts';
export { decide, type FerryState, ferryPolicy, initialState } from './decide.ts';
export {
  DEFAULT_SETTINGS,
  DEFAULT_TARGET,
  type SettingsIssue,
  scalingSettings,
  settingLabel,
  settingsIssues,
  settingsProblems,
} from './settings.ts';
export type * from './types.ts';
