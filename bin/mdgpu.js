#!/usr/bin/env node
// The compiled CLI lives in build/ (run `npm run build` first; scripts/setup.sh does).
import '../build/src/cli/main.js';
