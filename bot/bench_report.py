"""Bench, report: the machine the numbers come from, each target of issues 7 and 12 against its measured
value, and the tables `faqbot bench` prints without --json.
"""

from __future__ import annotations

import contextlib
import os
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import faiss
import psutil

from .index import package_versions
from .loadtest import format_load

#: Targets from issues 7 and 12 for this 2-core machine (issue 12 lowered server ready from 10 s to 5 s).
TARGETS = {"ratio": 1.2, "pipeline_p50_ms": 25.0, "server_ready_s": 5.0, "http_p50_ms": 60.0, "scale_10k": 1.5,
           "load_share": 0.6, "rebuild_share": 0.2, "load_p95_ms": 1500.0, "long_p95_change": 0.2}
#: The load test (`bot.loadtest`): clients and seconds per phase, full and short.


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine() -> dict:
    """What the numbers were measured on."""
    packages = package_versions()
    for name in ("numpy", "torch", "gradio", "gradio_client"):
        try:
            packages[name] = version(name)
        except PackageNotFoundError:
            packages[name] = "missing"
    return {"cpu": _cpu_model(), "cores": os.cpu_count(), "physical_cores": psutil.cpu_count(logical=False),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1), "python": platform.python_version(),
            "platform": platform.platform(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "unset"),
            "faiss_threads": faiss.omp_get_max_threads(), "packages": packages}


def check_targets(result: dict) -> list[dict]:
    """Each target of issue 7 with the measured value; `met` is None when it was not measured."""
    http, scale, load = result["http"], {row["entries"]: row for row in result["scale"]}, result.get("load", {})
    real = result["scale"][0]
    big = scale.get(10_000)
    rows = [
        ("pipeline p50 / encoder p50", result["ratio"], TARGETS["ratio"]),
        ("warm query p50 (ms)", result["pipeline_p50_ms"], TARGETS["pipeline_p50_ms"]),
        ("server ready from cold (s)", http.get("server_ready_s"), TARGETS["server_ready_s"]),
        ("API round trip p50, gradio_client (ms)", http.get("p50_ms"), TARGETS["http_p50_ms"]),
        ("API round trip p50, plain HTTP (ms)", http.get("rest_p50_ms"), TARGETS["http_p50_ms"]),
        ("10,000-entry query p50 / 17-entry", round(big["query_p50_ms"] / real["query_p50_ms"], 3) if big else None,
         TARGETS["scale_10k"]),
        ("load p95 (ms)", load.get("p95_ms"), TARGETS["load_p95_ms"]),
        # against a warm build (short mode, bot/bench.py build_real) the share says nothing: not measured
        ("rebuild after one alternate / cold build", round(result["rebuild_one_alt_s"] / result["build_s"], 3)
         if result["build_cache"] == "cold" else None, TARGETS["rebuild_share"]),
        ("load errors", load.get("errors"), 0),
        ("load lost writes", load.get("lost_writes"), 0),
        ("others' p95 change beside 100 kB questions", load.get("long", {}).get("p95_change"),
         TARGETS["long_p95_change"]),
    ]
    out = [{"target": name, "value": value, "limit": limit, "met": None if value is None else value <= limit}
           for name, value, limit in rows]
    # the one target that is a floor: the server must deliver this share of what one warm pipeline can do
    floor = round(TARGETS["load_share"] * 1000 / result["pipeline_p50_ms"], 2)
    rps = load.get("throughput_rps")
    out.append({"target": f"load throughput (req/s) >= {TARGETS['load_share']} x 1000 / pipeline p50", "value": rps,
                "limit": floor, "met": None if rps is None else rps >= floor})
    return out


# --------------------------------------------------------------------------- table


def format_bench(result: dict) -> str:
    """The result as readable tables (what `faqbot bench` prints without --json)."""
    m = result["machine"]
    lines = [f"faqbot bench ({result['mode']}, {result['seconds']} s) on {m['cpu']}, {m['cores']} cores, "
             f"Python {m['python']}, load average {m['loadavg_before'][0]} -> {m['loadavg_after'][0]}", ""]
    d = result["detail"]
    lines += _table(["measure", "value"], [
        ["encoders p50 (main engine + companion, the floor)", f"{result['encoder_p50_ms']:.1f} ms"],
        ["  main engine / companion alone p50", f"{d['main_encoder_p50_ms']:.1f} / {d['companion_p50_ms']:.1f} ms"],
        ["  fastest encoder / pipeline query", f"{d['encoder_min_ms']:.1f} / {d['pipeline_min_ms']:.1f} ms"],
        ["pipeline p50 / p95 (FaqBot.ask, warm)",
         f"{result['pipeline_p50_ms']:.1f} / {result['pipeline_p95_ms']:.1f} ms"],
        ["ratio pipeline / encoder (p50)", f"{result['ratio']:.2f}"],
        ["  sentence-transformers encode p50", f"{d['st_encode_p50_ms']:.1f} ms"],
        ["  search after the encoder p50", f"{d['search_p50_ms']:.2f} ms"],
        ["  FAISS p50", f"{result['faiss_p50_ms']:.3f} ms"],
        ["  BM25 p50 (tokens + scores)", f"{result['bm25_p50_ms']:.3f} ms"],
        ["cold start to first answer", f"{result['cold_start_s']:.2f} s"],
        [f"index build (real sheet, {result['build_cache']} vector cache)", f"{result['build_s']:.1f} s"],
        ["  rebuild after one added alternate", f"{result['rebuild_one_alt_s']:.1f} s"],
        ["peak RSS (serving process)", f"{result['peak_rss_mb']:.0f} MB"],
    ]) + [f"({d['queries']} queries x {d['rounds']} rounds, interleaved)", ""]
    lines += _table(["entries", "texts", "build s", "index MB", "load s", "query p50", "p95", "search p50", "RSS MB",
                     "FAISS"],
                    [[f"{r['entries']:,}" + (" (synthetic)" if r["synthetic"] else ""), f"{r['texts']:,}",
                      f"{r['build_s']:.1f}", f"{r['index_bytes'] / 2**20:.1f}", f"{r['load_s']:.2f}",
                      f"{r['query_p50_ms']:.1f}", f"{r['query_p95_ms']:.1f}", f"{r['search_p50_ms']:.2f}",
                      f"{r['rss_mb']:.0f}", r["faiss_type"]] for r in result["scale"]])
    lines += ["", "FAISS: recall@10 against exact flat, one query; 'depth' = what the searcher asks for"]
    lines += _table(["entries", "texts", "index", "params", "recall@10", "k=10 ms", "depth", "depth ms", "build s"],
                    [[f"{r['entries']:,}", f"{r['texts']:,}", name, f["params"], f"{f['recall_at_10']:.3f}",
                      f"{f['search_p50_ms']:.3f}", str(r["depth"]), f"{f['depth_search_p50_ms']:.3f}",
                      f"{f['build_s']:.2f}"] for r in result["scale"] for name, f in r["faiss"].items()])
    if d["search_growth"]:
        lines += ["", "Search time for one query at depth 512 beyond the corpora (ms):"]
        lines += _table(["texts", "flat", "flat, 1 thread", "HNSW", "HNSW build s"],
                        [[f"{g['texts']:,}", f"{g['flat_ms']:.2f}", f"{g['flat_1thread_ms']:.2f}",
                          f"{g['hnsw_ms']:.2f}" if "hnsw_ms" in g else "-",
                          f"{g['hnsw_build_s']:.1f}" if "hnsw_build_s" in g else "-"] for g in d["search_growth"]])
    if d["encoder_threads"]:
        lines += ["", "Raw encoder by OpenMP setting (fresh processes): " + ", ".join(
            f"{name} p50 {v['p50_ms']:.1f} / p95 {v['p95_ms']:.1f} ms" for name, v in d["encoder_threads"].items())]
    http = result["http"]
    lines.append("")
    if "skipped" in http:
        lines.append(f"HTTP: skipped — {http['skipped']}")
    else:
        lines.append(f"HTTP (page `ask` API, warm server, {http['queries']} queries): gradio_client p50 "
                     f"{http['p50_ms']:.1f} / p95 {http['p95_ms']:.1f} ms; plain HTTP p50 {http['rest_p50_ms']:.1f} / "
                     f"p95 {http['rest_p95_ms']:.1f} ms; server ready {http['server_ready_s']:.1f} s from cold, "
                     f"first answer {http['first_answer_s']:.2f} s, server RSS {http['server_rss_mb']:.0f} MB")
    load = result.get("load", {})
    lines += ["", f"Load: skipped — {load['skipped']}" if "skipped" in load else format_load(load)] if load else []
    lines += ["", "Targets (issues 7 and 12):"]
    lines += _table(["target", "measured", "limit", "met"],
                    [[t["target"], "-" if t["value"] is None else str(t["value"]), str(t["limit"]),
                      {True: "yes", False: "NO", None: "not measured"}[t["met"]]] for t in result["targets"]])
    if result["skipped"]:
        lines += ["", *(f"skipped: {s}" for s in result["skipped"])]
    return "\n".join(lines)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    def fmt(cells: list[str]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()
    return [fmt(header), fmt(["-" * w for w in widths]), *(fmt(r) for r in rows)]
