/**
 * A stand-in daemon for test/backend/isolated.test.ts: opens the compute device in its worker
 * process, prints the worker's pid, and runs until it is killed.
 */
import { IsolatedDevice } from '../../src/backend/isolated.js';
import { setLogSink } from '../../src/log.js';

setLogSink(() => {});
const dev = IsolatedDevice.open();
await dev.whenReady();
process.stdout.write(`${dev.workerPid}\n`);
setInterval(() => {}, 1000);
