#!/usr/bin/env python3
"""`make bench-sync`: `ferry sync` versus `aws s3 sync` and `s5cmd sync`, against the same local S3 server.

The server is s3s-fs (a Rust S3 server over a folder) with GetObject bodies sent from a mapping of the file
(bench/s3-server; stock s3s-fs reads 4 KiB at a time and used more CPU than the clients it served), so the clients and
not the server are measured. The data set is 1 GiB: 200 small-to-medium files (4 KiB to ~16 MiB, 512 MiB in all) plus
one 512 MiB file. Each client copies the whole prefix into an empty folder, in interleaved rounds (medians reported),
timed until its copy is on disk: ferry fsyncs before it exits, the others are followed by a syncfs of the destination
(time to exit is reported too); every client's last copy is compared with the source, file by file (SHA-256). Then
`ferry sync` runs again on the synced folder and the GETs it sends are counted by a counting TCP relay in front of the
server. Last, ferry alone copies one generated object of `--large-gib` GiB (4 by default), to show that its memory
does not grow with a file's size. Peak RSS of ferry comes from `/usr/bin/time -v`. Prints a table and writes
bench/results/sync.json; stops the server by its PID.

    python bench/bench_sync.py --ferry target/release/ferry --s3-server bench/.tools/bin/ferry-bench-s3-server
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import signal
import statistics
import socket
import subprocess
import sys
import time
from pathlib import Path

from relay import Relay

ROOT = Path(__file__).resolve().parent.parent
BUCKET = "bench"
PREFIX = "models/bench-model/artifacts"
LARGE_PREFIX = "models/bench-large/artifacts"
KEY, SECRET = "ferrybench", "ferrybench-secret"
MIB = 1 << 20
TARGETS = {"vs_s5cmd": 1.0, "vs_aws": 3.0, "rss_mib": 64, "resync_gets": 0}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"bench: nothing listens on 127.0.0.1:{port} after {timeout} s")


def generate(src: Path) -> tuple[int, int]:
    """The data set as local files under src/ (deterministic)."""
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    rng = random.Random(5)
    # 200 sizes spread log-uniformly from 4 KiB to 16 MiB, scaled so that they add up to 512 MiB.
    raw = [2 ** rng.uniform(12, 24) for _ in range(200)]
    scale = (512 * MIB) / sum(raw)
    sizes = [max(1, int(s * scale)) for s in raw]
    sizes[-1] += 512 * MIB - sum(sizes)
    block = os.urandom(4 * MIB)
    for i, size in enumerate(sizes):
        write_generated(src / f"part-{i // 50}" / f"file-{i:03d}.bin", size, i, block)
    write_generated(src / "weights.bin", 512 * MIB, 10_000, block)
    return 201, sum(sizes) + 512 * MIB


def write_generated(path: Path, size: int, salt: int, block: bytes) -> None:
    """`size` bytes of `block` repeated, each 4 MiB stamped with `salt` and its index (no two blocks alike)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        left, i = size, 0
        while left > 0:
            n = min(left, len(block))
            head = salt.to_bytes(8, "little") + i.to_bytes(8, "little")
            f.write((head + block[16:n]) if n > 16 else block[:n])
            left -= n
            i += 1


def upload_once(work: Path, data: Path, s5cmd: Path, env: dict[str, str], endpoint: str) -> tuple[int, int]:
    """Puts the data set into the server through S3 (so that the server keeps each object's ETag and does not
    re-hash files on every request), once; a stamp remembers it."""
    stamp = work / "uploaded.json"
    if stamp.exists():
        info = json.loads(stamp.read_text())
        return info["files"], info["bytes"]
    src = work / "src"
    files, total = generate(src)
    run([str(s5cmd), "--endpoint-url", endpoint, "cp", f"{src}/*", f"s3://{BUCKET}/{PREFIX}/"], env)
    shutil.rmtree(src)
    stamp.write_text(json.dumps({"files": files, "bytes": total}))
    return files, total


def upload_large_once(work: Path, gib: int, s5cmd: Path, env: dict[str, str], endpoint: str) -> int:
    """Puts one generated object of `gib` GiB under LARGE_PREFIX, once; a stamp remembers its size."""
    stamp = work / "uploaded-large.json"
    size = gib << 30
    if stamp.exists() and json.loads(stamp.read_text())["bytes"] == size:
        return size
    src = work / "src-large"
    shutil.rmtree(src, ignore_errors=True)
    write_generated(src / "weights.bin", size, 20_000, os.urandom(4 * MIB))
    run([str(s5cmd), "--endpoint-url", endpoint, "cp", str(src / "weights.bin"), f"s3://{BUCKET}/{LARGE_PREFIX}/"],
        env)
    shutil.rmtree(src)
    stamp.write_text(json.dumps({"bytes": size}))
    return size


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    secs = time.perf_counter() - started
    if out.returncode != 0:
        raise SystemExit(f"bench: {' '.join(cmd)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return secs, out.stderr


def warm_page_cache(folder: Path) -> None:
    """Reads the server's files once, so that the first client timed does not pay for reading them from disk."""
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as f:
                while f.read(1 << 20):
                    pass


def run_until_durable(cmd: list[str], env: dict[str, str], dest: Path) -> tuple[float, str, float]:
    """Runs a copy; returns (seconds to exit, its stderr, seconds until its files are on disk). ferry fsyncs every
    file and folder before it exits; the others leave dirty pages, so their copy is durable only after a syncfs of
    the destination (on EFS, NFS's close-to-open flush makes every client pay this before close returns)."""
    started = time.perf_counter()
    secs, stderr = run(cmd, env)
    subprocess.run(["sync", "-f", str(dest)], check=True)
    return secs, stderr, time.perf_counter() - started


def measured_copy(name: str, cmd: list[str], env: dict[str, str], dest: Path, folder: Path,
                  expected: tuple[int, int]) -> dict:
    """Runs one copy into the emptied `dest` under GNU time, checks that `folder` holds the `expected` (files, bytes),
    and returns its seconds to exit, seconds until durable and peak RSS."""
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir()
    os.sync()  # nothing left to write back from the previous run
    secs, stderr, durable = run_until_durable(["/usr/bin/time", "-v", *cmd], env, dest)
    got = tree_size(folder)
    if got != expected:
        raise SystemExit(f"bench: {name} copied {got[0]} files, {got[1]} bytes; expected {expected[0]}, {expected[1]}")
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr)
    return {"exit_s": secs, "durable_s": durable, "peak_rss_kib": int(rss.group(1))}


def copied_files(folder: Path) -> list[Path]:
    """The files a client copied into `folder` (ferry's manifest left out)."""
    return [p for p in folder.rglob("*") if p.is_file() and p.name != ".ferry-manifest.json"]


def digests(folder: Path) -> dict[str, str]:
    """SHA-256 of every copied file under `folder`, by relative path."""
    out = {}
    for path in copied_files(folder):
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(MIB):
                h.update(chunk)
        out[path.relative_to(folder).as_posix()] = h.hexdigest()
    return out


def tree_size(folder: Path) -> tuple[int, int]:
    files = copied_files(folder)
    return len(files), sum(p.stat().st_size for p in files)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ferry", default=str(ROOT / "target/release/ferry"))
    ap.add_argument("--s3-server", default=str(ROOT / "bench/.tools/bin/ferry-bench-s3-server"))
    ap.add_argument("--rounds", type=int, default=5, help="runs of each client, interleaved; medians reported")
    ap.add_argument("--venv", default=str(ROOT / ".venv"))
    ap.add_argument("--work", default=str(ROOT / "bench/.data"))
    ap.add_argument("--out", default=str(ROOT / "bench/results/sync.json"))
    ap.add_argument("--large-gib", type=int, default=4,
                    help="size of the single object ferry also syncs alone, for its peak RSS (0: skip)")
    args = ap.parse_args()

    venv_bin = Path(args.venv) / "bin"
    for tool in [args.ferry, args.s3_server, venv_bin / "aws", venv_bin / "s5cmd", "/usr/bin/time"]:
        if not Path(tool).exists():
            raise SystemExit(f"bench: {tool} is missing (make bench-sync installs what it needs)")
    work = Path(args.work)
    data = work / "s3"
    if not (work / "uploaded.json").exists():
        shutil.rmtree(data, ignore_errors=True)
        (work / "uploaded-large.json").unlink(missing_ok=True)
    (data / BUCKET).mkdir(parents=True, exist_ok=True)
    out_root = work / "out"
    shutil.rmtree(out_root, ignore_errors=True)
    out_root.mkdir(parents=True)

    port = free_port()
    server = subprocess.Popen(
        [args.s3_server, "--port", str(port), "--access-key", KEY, "--secret-key", SECRET,
         str(data)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    relay = None
    try:
        wait_port(port)
        endpoint = f"http://127.0.0.1:{port}"
        env = {**os.environ, "AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_REGION": "us-east-1",
               "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint, "NO_COLOR": "1"}
        env.pop("AWS_PROFILE", None)
        files, total = upload_once(work, data, venv_bin / "s5cmd", env, endpoint)
        large = upload_large_once(work, args.large_gib, venv_bin / "s5cmd", env, endpoint) if args.large_gib else 0
        warm_page_cache(data / BUCKET / PREFIX)
        source = f"s3://{BUCKET}/{PREFIX}"
        (work / "releases.toml").write_text(
            '[[models.bench.versions]]\nversion = "1"\napproved_by = "bench@example.org"\n'
            f'approved_at = "2026-01-01T00:00:00Z"\nticket = "BENCH-1"\nartifact_uri = "{source}"\n'
            '[[models.large.versions]]\nversion = "1"\napproved_by = "bench@example.org"\n'
            f'approved_at = "2026-01-01T00:00:00Z"\nticket = "BENCH-2"\nartifact_uri = "s3://{BUCKET}/{LARGE_PREFIX}"\n')
        catalog = work / "ferry.toml"
        catalog.write_text(f'[registry]\nsource = "manifest"\npath = "{work / "releases.toml"}"\n'
                           '[models.bench]\nregistered_model = "bench"\n[models.large]\nregistered_model = "large"\n')
        ferry_sync = [args.ferry, "sync", "--quiet", "--catalog", str(catalog), "--output", "json"]

        contenders = {
            "ferry sync": lambda dest: [*ferry_sync, "--model", "bench", "--efs-root", str(dest)],
            "s5cmd sync": lambda dest: [str(venv_bin / "s5cmd"), "--endpoint-url", endpoint, "sync", f"{source}/*",
                                        f"{dest}/"],
            "aws s3 sync": lambda dest: [str(venv_bin / "aws"), "s3", "sync", "--only-show-errors", "--endpoint-url",
                                         endpoint, source, str(dest)],
        }
        samples: dict[str, list[dict]] = {name: [] for name in contenders}
        copied = {name: out_root / name.split()[0] for name in contenders}
        folders = {name: dest / "bench" / "1" if name == "ferry sync" else dest for name, dest in copied.items()}
        for _ in range(args.rounds):
            for name, command in contenders.items():
                samples[name].append(measured_copy(name, command(copied[name]), env, copied[name], folders[name],
                                                   (files, total)))
        expected = digests(data / BUCKET / PREFIX)
        for name, folder in folders.items():
            got = digests(folder)
            if got != expected:
                wrong = sorted(p for p in expected.keys() | got.keys() if expected.get(p) != got.get(p))
                raise SystemExit(f"bench: {name} copied {len(wrong)} files that differ from the source, first {wrong[0]}")
        results: dict[str, dict] = {}
        for name, runs in samples.items():
            results[name] = {
                "seconds": statistics.median(r["durable_s"] for r in runs),
                "exit_seconds": statistics.median(r["exit_s"] for r in runs),
                "peak_rss_kib": max(r["peak_rss_kib"] for r in runs),
                "runs": runs,
            }
            results[name]["mib_per_s"] = total / MIB / results[name]["seconds"]
        ferry_cmd = contenders["ferry sync"](copied["ferry sync"])

        # Resync through the counting relay: the version is present, so ferry must send no object GET.
        relay = Relay(port)
        env_relay = {**env, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{relay.port}"}
        secs, _ = run(ferry_cmd, env_relay)
        resync = {"seconds": secs, "gets": relay.gets, "requests": relay.requests}

        # One large object alone: peak RSS must not grow with the size of a file.
        large_run = None
        if large:
            dest = out_root / "large"
            one = measured_copy("ferry sync (large object)", [*ferry_sync, "--model", "large", "--efs-root", str(dest)],
                                 env, dest, dest / "large" / "1", (1, large))
            large_run = {"bytes": large, "seconds": one["durable_s"], "peak_rss_mib": one["peak_rss_kib"] / 1024}

        ferry = results["ferry sync"]
        summary = {
            "data": {"files": files, "bytes": total, "largest_file_bytes": 512 * MIB},
            "server": "s3s-fs 0.14.1 with GetObject bodies sent from a mapping of the file (bench/s3-server) on 127.0.0.1",
            "rounds": args.rounds,
            "clients": results,
            "ratios": {"vs_s5cmd": results["s5cmd sync"]["seconds"] / ferry["seconds"],
                       "vs_aws": results["aws s3 sync"]["seconds"] / ferry["seconds"]},
            "ratios_at_exit": {"vs_s5cmd": results["s5cmd sync"]["exit_seconds"] / ferry["exit_seconds"],
                               "vs_aws": results["aws s3 sync"]["exit_seconds"] / ferry["exit_seconds"]},
            "ferry_peak_rss_mib": (ferry["peak_rss_kib"] or 0) / 1024,
            "large_object": large_run,
            "resync": resync,
            "targets": TARGETS,
        }
        checks = {
            "vs_s5cmd": summary["ratios"]["vs_s5cmd"] >= TARGETS["vs_s5cmd"],
            "vs_aws": summary["ratios"]["vs_aws"] >= TARGETS["vs_aws"],
            "rss_mib": max(summary["ferry_peak_rss_mib"], large_run["peak_rss_mib"] if large_run else 0)
            <= TARGETS["rss_mib"],
            "resync_gets": resync["gets"] <= TARGETS["resync_gets"],
        }
        summary["met"] = checks
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")

        print(f"sync of {files} files, {total / MIB:.0f} MiB (largest 512 MiB) from s3s-fs on 127.0.0.1, "
              f"median of {args.rounds} interleaved rounds")
        print(f"{'client':<12} {'durable s':>10} {'MiB/s':>8} {'ferry is':>9} {'exit s':>8} {'ferry is':>9}")
        for name, r in results.items():
            ratio = r["seconds"] / ferry["seconds"]
            at_exit = r["exit_seconds"] / ferry["exit_seconds"]
            mine = name == "ferry sync"
            print(f"{name:<12} {r['seconds']:>10.2f} {r['mib_per_s']:>8.0f} {'' if mine else f'{ratio:.2f}x':>9} "
                  f"{r['exit_seconds']:>8.2f} {'' if mine else f'{at_exit:.2f}x':>9}")
        print(f"ferry peak RSS {summary['ferry_peak_rss_mib']:.1f} MiB (target <= {TARGETS['rss_mib']})")
        if large_run:
            print(f"ferry alone on one {large / (1 << 30):.0f} GiB object: {large_run['seconds']:.2f} s "
                  f"({large / MIB / large_run['seconds']:.0f} MiB/s), peak RSS {large_run['peak_rss_mib']:.1f} MiB")
        print(f"ferry resync: {resync['gets']} GETs of objects, {resync['requests']} requests in all, {resync['seconds']:.2f} s")
        print("targets: " + ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in checks.items()))
        print(f"wrote {args.out}")
        return 0
    finally:
        if relay:
            relay.close()
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        shutil.rmtree(out_root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
