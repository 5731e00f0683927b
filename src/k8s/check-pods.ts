/**
 * Checks of one pod template (a Deployment's): its selector, its probes' ports, the Pod Security Standard
 * "restricted" and Ferry's own hardening on top of it. Each is a pure function of one object.
 */
import {
  child,
  containersOf,
  type Fields,
  list,
  type PodTemplate,
  podTemplateOf,
  problem,
  record,
  selectorIsEmpty,
  selectorMatches,
  shown,
  stringMap,
  text,
} from './check-common.ts';
import type { KubernetesObject } from './types.ts';

/** The first requirement of a LabelSelector that these labels do not meet, in words. */
function unmetRequirement(selector: unknown, labels: Record<string, string>): string | undefined {
  const s = record(selector);
  if (!s) return 'it is not a label selector';
  for (const [k, v] of Object.entries(record(s.matchLabels) ?? {})) {
    if (!Object.hasOwn(labels, k))
      return `it requires label ${k}=${String(v)}, which the pod template does not have`;
    if (labels[k] !== v) return `it requires label ${k}=${String(v)}, the pod template has ${k}=${labels[k]}`;
  }
  const expressions = list(s.matchExpressions);
  for (let i = 0; i < expressions.length; i++)
    if (!selectorMatches({ matchExpressions: [expressions[i]] }, labels))
      return `matchExpressions[${i}] ${shown(expressions[i])} does not hold for the pod template's labels`;
  return undefined;
}

/** A Deployment's spec.selector is not empty and selects its own pod template (the API server rejects it
 * otherwise: "selector does not match template labels"). */
export function selectorProblems(obj: KubernetesObject): string[] {
  const template = podTemplateOf(obj);
  if (!template) return [];
  const selector = record(obj.spec)?.selector;
  if (selector === undefined) return []; // a required field: the schema reports it
  if (selectorIsEmpty(selector))
    return [problem(obj, 'spec.selector', 'is empty: a Deployment must select its pods by label')];
  const unmet = unmetRequirement(selector, template.labels);
  return unmet ? [problem(obj, 'spec.selector', `does not select the pod template: ${unmet}`)] : [];
}

/**
 * Every port a probe (startup, readiness, liveness) or a lifecycle hook (postStart, preStop) of a container
 * points at, by number or by name, is one of that container's declared ports. Kubernetes accepts an undeclared
 * number (and fails a named one only when the kubelet probes); Ferry declares every port it probes, so either is
 * a mistake.
 */
export function probePortProblems(obj: KubernetesObject): string[] {
  const template = podTemplateOf(obj);
  if (!template) return [];
  const out: string[] = [];
  for (const { path, container } of containersOf(template.spec, `${template.path}.spec`)) {
    const ports = list(container.ports).map(record);
    const numbers = ports.map((p) => p?.containerPort).filter((p) => typeof p === 'number');
    const names = ports.map((p) => text(p?.name)).filter((n) => n !== undefined);
    const declared = ports.length === 0 ? 'it declares none' : `it declares ${numbers.join(', ')}`;
    const handlers: { path: string; handler: Fields }[] = [];
    for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
      const p = record(container[probe]);
      if (p) handlers.push({ path: child(path, probe), handler: p });
    }
    const lifecycle = record(container.lifecycle);
    for (const hook of ['postStart', 'preStop']) {
      const h = record(lifecycle?.[hook]);
      if (h) handlers.push({ path: child(child(path, 'lifecycle'), hook), handler: h });
    }
    for (const { path: at, handler } of handlers) {
      for (const action of ['httpGet', 'tcpSocket', 'grpc']) {
        const port = record(handler[action])?.port;
        const portPath = child(child(at, action), 'port');
        if (typeof port === 'number' && !numbers.includes(port))
          out.push(
            problem(
              obj,
              portPath,
              `port ${port} is not a port of container ${shown(container.name)} (${declared})`,
            ),
          );
        if (typeof port === 'string' && !names.includes(port))
          out.push(
            problem(
              obj,
              portPath,
              `no port of container ${shown(container.name)} is named ${shown(port)} (${names.length ? `its named ports: ${names.join(', ')}` : 'it names none'})`,
            ),
          );
      }
    }
  }
  return out;
}

const RESTRICTED_VOLUMES = [
  'configMap',
  'csi',
  'downwardAPI',
  'emptyDir',
  'ephemeral',
  'persistentVolumeClaim',
  'projected',
  'secret',
];
/** The sysctls every PSS version allows (the 1.0 list; later versions allow a few more, which Ferry does not
 * need: the oldest list passes on every cluster). */
const SAFE_SYSCTLS = [
  'kernel.shm_rmid_forced',
  'net.ipv4.ip_local_port_range',
  'net.ipv4.tcp_syncookies',
  'net.ipv4.ping_group_range',
  'net.ipv4.ip_unprivileged_port_start',
];
const SELINUX_TYPES = ['', 'container_t', 'container_init_t', 'container_kvm_t'];
const APPARMOR_ANNOTATION = 'container.apparmor.security.beta.kubernetes.io/';
const PSS = '(Pod Security Standard restricted)';

/**
 * The Pod Security Standard "restricted" (which includes "baseline"), as the pod-security admission
 * controller checks a pod template, for every container, init container and ephemeral container:
 * - baseline: no hostNetwork/hostPID/hostIPC, no privileged, no Windows hostProcess, no hostPath volumes, no
 *   hostPort, AppArmor only RuntimeDefault/Localhost, SELinux only the container types and no user/role,
 *   procMount Default, seccomp never Unconfined, only safe sysctls;
 * - restricted: volumes only configMap, csi, downwardAPI, emptyDir, ephemeral, persistentVolumeClaim,
 *   projected, secret; allowPrivilegeEscalation false; runAsNonRoot true (in the pod, or in every container,
 *   and false nowhere); runAsUser never 0; seccompProfile RuntimeDefault or Localhost (in the pod, or in every
 *   container); capabilities drop ALL and add nothing but NET_BIND_SERVICE.
 */
export function podSecurityProblems(obj: KubernetesObject): string[] {
  const template = podTemplateOf(obj);
  if (!template) return [];
  const out: string[] = [];
  const specPath = `${template.path}.spec`;
  const spec = template.spec;
  const report = (path: string, message: string) => out.push(problem(obj, path, `${message} ${PSS}`));

  for (const field of ['hostNetwork', 'hostPID', 'hostIPC'])
    if (spec[field] === true) report(child(specPath, field), 'must not be true: no host namespaces');

  list(spec.volumes).forEach((v, i) => {
    const volume = record(v);
    if (!volume) return;
    const at = child(child(specPath, 'volumes'), i);
    for (const type of Object.keys(volume).filter((k) => k !== 'name' && volume[k] != null)) {
      if (type === 'hostPath') report(child(at, type), 'hostPath volumes are forbidden');
      else if (!RESTRICTED_VOLUMES.includes(type))
        report(child(at, type), `volume type ${type} is not allowed (only ${RESTRICTED_VOLUMES.join(', ')})`);
    }
  });

  const podSc = record(spec.securityContext) ?? {};
  const podScPath = child(specPath, 'securityContext');
  list(podSc.sysctls).forEach((s, i) => {
    const name = text(record(s)?.name);
    if (name !== undefined && !SAFE_SYSCTLS.includes(name))
      report(
        child(child(child(podScPath, 'sysctls'), i), 'name'),
        `sysctl ${name} is not one of the safe sysctls`,
      );
  });
  securityContextCommon(podSc, podScPath, report);
  if (podSc.runAsNonRoot === false) report(child(podScPath, 'runAsNonRoot'), 'must not be false');
  const podSeccomp = text(record(podSc.seccompProfile)?.type);
  if (podSeccomp !== undefined && podSeccomp !== 'RuntimeDefault' && podSeccomp !== 'Localhost')
    report(
      child(child(podScPath, 'seccompProfile'), 'type'),
      `must be RuntimeDefault or Localhost, not ${podSeccomp}`,
    );

  const annotations = stringMap(record(record(record(obj.spec)?.template)?.metadata)?.annotations) ?? {};
  for (const [key, value] of Object.entries(annotations))
    if (key.startsWith(APPARMOR_ANNOTATION) && value !== 'runtime/default' && !value.startsWith('localhost/'))
      report(
        child(`${template.path}.metadata.annotations`, key),
        `AppArmor profile ${shown(value)} is not allowed (runtime/default or localhost/*)`,
      );

  for (const { path, container } of containersOf(spec, specPath)) {
    const sc = record(container.securityContext) ?? {};
    const scPath = child(path, 'securityContext');
    securityContextCommon(sc, scPath, report);
    if (sc.privileged === true) report(child(scPath, 'privileged'), 'must not be true');
    if (sc.allowPrivilegeEscalation !== false)
      report(
        child(scPath, 'allowPrivilegeEscalation'),
        `must be false (is ${shown(sc.allowPrivilegeEscalation)})`,
      );
    if (sc.procMount !== undefined && sc.procMount !== 'Default')
      report(child(scPath, 'procMount'), `must be Default, not ${shown(sc.procMount)}`);

    if (sc.runAsNonRoot === false) report(child(scPath, 'runAsNonRoot'), 'must not be false');
    else if (sc.runAsNonRoot !== true && podSc.runAsNonRoot !== true)
      report(child(scPath, 'runAsNonRoot'), "must be true, here or in the pod's securityContext");

    const seccomp = text(record(sc.seccompProfile)?.type);
    if (seccomp !== undefined && seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost')
      report(
        child(child(scPath, 'seccompProfile'), 'type'),
        `must be RuntimeDefault or Localhost, not ${seccomp}`,
      );
    else if (seccomp === undefined && podSeccomp === undefined)
      report(
        child(child(scPath, 'seccompProfile'), 'type'),
        "must be RuntimeDefault or Localhost, here or in the pod's securityContext",
      );

    const capabilities = record(sc.capabilities);
    const drop = list(capabilities?.drop);
    if (!drop.includes('ALL'))
      report(
        child(child(scPath, 'capabilities'), 'drop'),
        `must include ALL (is ${shown(capabilities?.drop)})`,
      );
    list(capabilities?.add).forEach((cap, i) => {
      if (cap !== 'NET_BIND_SERVICE')
        report(
          child(child(child(scPath, 'capabilities'), 'add'), i),
          `capability ${shown(cap)} may not be added (only NET_BIND_SERVICE)`,
        );
    });

    list(container.ports).forEach((p, i) => {
      const hostPort = record(p)?.hostPort;
      if (hostPort !== undefined && hostPort !== 0)
        report(child(child(child(path, 'ports'), i), 'hostPort'), `must not be set (is ${shown(hostPort)})`);
    });
  }
  return out;
}

/** What the pod's and each container's securityContext share: runAsUser, SELinux, AppArmor, hostProcess. */
function securityContextCommon(
  sc: Fields,
  path: string,
  report: (path: string, message: string) => void,
): void {
  if (sc.runAsUser === 0) report(child(path, 'runAsUser'), 'must not be 0 (root)');
  const selinux = record(sc.seLinuxOptions);
  if (selinux) {
    const type = selinux.type;
    if (type !== undefined && !SELINUX_TYPES.includes(String(type)))
      report(child(child(path, 'seLinuxOptions'), 'type'), `SELinux type ${shown(type)} is not allowed`);
    for (const field of ['user', 'role'])
      if (selinux[field] !== undefined && selinux[field] !== '')
        report(child(child(path, 'seLinuxOptions'), field), 'must not be set');
  }
  const apparmor = text(record(sc.appArmorProfile)?.type);
  if (apparmor !== undefined && apparmor !== 'RuntimeDefault' && apparmor !== 'Localhost')
    report(
      child(child(path, 'appArmorProfile'), 'type'),
      `must be RuntimeDefault or Localhost, not ${apparmor}`,
    );
  if (record(sc.windowsOptions)?.hostProcess === true)
    report(child(child(path, 'windowsOptions'), 'hostProcess'), 'must not be true');
}

/**
 * Ferry's hardening beyond "restricted" (issue 12): every container's root file system is read-only (what a
 * model server writes goes to an emptyDir), and the pod gets no service account token (nothing Ferry runs in
 * the cluster uses the Kubernetes API).
 */
export function ferryPodProblems(obj: KubernetesObject): string[] {
  const template: PodTemplate | undefined = podTemplateOf(obj);
  if (!template) return [];
  const out: string[] = [];
  const specPath = `${template.path}.spec`;
  if (template.spec.automountServiceAccountToken !== false)
    out.push(
      problem(
        obj,
        child(specPath, 'automountServiceAccountToken'),
        `must be false (is ${shown(template.spec.automountServiceAccountToken)}): Ferry's pods need no Kubernetes API token`,
      ),
    );
  for (const { path, container } of containersOf(template.spec, specPath)) {
    const readOnly = record(container.securityContext)?.readOnlyRootFilesystem;
    if (readOnly !== true)
      out.push(
        problem(
          obj,
          child(child(path, 'securityContext'), 'readOnlyRootFilesystem'),
          `must be true (is ${shown(readOnly)}): Ferry's containers write only to mounted volumes`,
        ),
      );
  }
  return out;
}
