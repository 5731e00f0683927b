/**
 * How long a test waits for a condition before it calls the wait a hang. Only a guard against hanging
 * forever, never a claim about speed: on a busy 2-core machine (another test file, other programs) what
 * takes 2 s alone takes far longer, and a test must still pass there. Speed is measured in bench/, not
 * asserted in tests. Its own module so that tests can use it without loading test/helpers.ts.
 */
export const HANG_MS = 180_000;
