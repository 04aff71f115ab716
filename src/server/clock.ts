/**
 * The server's sense of elapsed time. Limits, delays and the keepalive measure durations, and a
 * wall clock can step (NTP, an operator, a VM resumed): a step back once refused every request, a
 * step forward closed every session. So they read a monotonic clock, and take it as a parameter
 * so that tests can drive hours of timers in microseconds.
 */

/** Milliseconds from an arbitrary origin; never goes backwards. */
export type Clock = () => number;

/** The process's monotonic clock. */
export const monotonic: Clock = () => performance.now();
