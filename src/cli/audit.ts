/**
 * `ferry audit [--verify]`: the platform's audit log (admins only), through the control-plane API. Without
 * --verify: the newest records, oldest first (SEQ TIME ACTOR ACTION OBJECT OUTCOME SOURCE REQUEST), filtered
 * by actor, action or outcome, paged with --before. With --verify: checks the hash chain from the first record
 * and its end against the head kept beside the database (and --head, one kept elsewhere); prints where it
 * breaks and exits 1 when it does.
 */
import { type Command, Option } from 'commander';
import { connect } from './context.ts';
import { auditTable, auditVerifyText, parseIntFlag, UsageError } from './format.ts';
import { EXIT_FAILURE } from './output.ts';
import { flag, type OutputFlags, out, printJson, run, withOutput } from './platform.ts';

interface AuditFlags extends OutputFlags {
  limit?: number;
  before?: number;
  actor?: string;
  action?: string;
  outcome?: 'allowed' | 'denied' | 'failed';
  verify?: boolean;
  head?: string;
}

export function registerAudit(program: Command): void {
  withOutput(
    program
      .command('audit')
      .description(
        'the audit log (admins): every change and every denied request; --verify checks it was not edited',
      )
      .option(
        '--limit <n>',
        'at most this many of the newest records (1 to 1000, default 100)',
        flag((v) => parseIntFlag('--limit', v, 1, 1000)),
      )
      .option(
        '--before <seq>',
        'only records older than this one (to page back)',
        flag((v) => parseIntFlag('--before', v, 1, Number.MAX_SAFE_INTEGER)),
      )
      .option('--actor <name>', "only this token's records (anonymous: requests without a valid token)")
      .option('--action <operation>', 'only this API operation, e.g. deleteToken (see /openapi.json)')
      .addOption(new Option('--outcome <outcome>', 'only these').choices(['allowed', 'denied', 'failed']))
      .option('--verify', 'check the hash chain instead of listing; exits 1 when it is broken')
      .option(
        '--head <hash>',
        'with --verify: a head printed by an earlier --verify, where the log must end',
      ),
  ).action(
    run(async (opts: AuditFlags) => {
      const client = connect(opts);
      if (opts.verify) {
        if (opts.head !== undefined && !/^[0-9a-f]{64}$/.test(opts.head))
          throw new UsageError('--head is the 64 hex digits of a record hash, as --verify prints it');
        const check = await client.verifyAudit(opts.head);
        if (opts.output === 'json') printJson(check);
        else out(auditVerifyText(check));
        if (!check.ok) process.exitCode = EXIT_FAILURE;
        return;
      }
      if (opts.head !== undefined) throw new UsageError('--head goes with --verify');
      const records = await client.listAudit({
        ...(opts.limit === undefined ? {} : { limit: opts.limit }),
        ...(opts.before === undefined ? {} : { before: opts.before }),
        ...(opts.actor === undefined ? {} : { actor: opts.actor }),
        ...(opts.action === undefined ? {} : { action: opts.action }),
        ...(opts.outcome === undefined ? {} : { outcome: opts.outcome }),
      });
      if (opts.output === 'json') return printJson(records);
      out(records.length === 0 ? 'No audit records.' : auditTable(records));
    }),
  );
}
