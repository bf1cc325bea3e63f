#!/usr/bin/env node
// npm's install script (package.json): builds the native addon with node-gyp against the headers
// of the Node that runs it, found on this machine — never downloaded. Without a nodedir, node-gyp
// fetches Node's headers from the internet; setup needs nothing but the distribution's archive
// and the npm registry. The headers live under Node's prefix: /usr/include/node for Debian's
// nodejs (package libnode-dev, which scripts/setup.sh installs) and for other packaged Nodes,
// <prefix>/include/node for a Node from a tarball or a version manager. An explicit nodedir in
// npm's configuration (npm_config_nodedir) wins.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';

const nodedir = process.env.npm_config_nodedir || path.resolve(process.execPath, '..', '..');
const header = path.join(nodedir, 'include', 'node', 'node_api.h');
if (!existsSync(header)) {
  process.stderr.write(
    `mdgpu: no Node headers at ${path.dirname(header)} for the native addon (node-gyp would download them).\n` +
      "mdgpu: on Debian install Node's headers (apt-get install libnode-dev, or run scripts/setup.sh as root),\n" +
      'mdgpu: or set nodedir (npm_config_nodedir) to a directory with include/node/node_api.h.\n',
  );
  process.exit(1);
}
// npm runs its own node-gyp for install scripts and names it in npm_config_node_gyp.
const gyp = process.env.npm_config_node_gyp;
const [command, first] = gyp ? [process.execPath, [gyp]] : ['node-gyp', []];
const run = spawnSync(command, [...first, 'rebuild', '--directory', 'native', `--nodedir=${nodedir}`], { stdio: 'inherit' });
if (run.error) {
  process.stderr.write(`mdgpu: could not run node-gyp: ${run.error.message}\n`);
  process.exit(1);
}
process.exit(run.status ?? 1);
