"""``make bench``: every benchmark, one after the other, and a Markdown table of the results in
``tests/bench/RESULTS.md`` (with the machine it ran on).  Each figure is printed beside its
in-run baseline; "met" compares with the targets the issues set.

    python -m tests.bench.run_all [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import importlib
import subprocess
from pathlib import Path
from typing import Any

from tests.bench import (
    bench_agent_to_customer,
    bench_customer_to_agent,
    bench_kill_loop,
    bench_soak,
)
from tests.bench.common import machine

RESULTS = Path(__file__).with_name("RESULTS.md")


def row(name: str, value: str, baseline: str, ratio: str, target: str, met: bool | None) -> str:
    verdict = "—" if met is None else ("yes" if met else "**no**")
    return f"| {name} | {value} | {baseline} | {ratio} | {target} | {verdict} |"


def git_revision() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    # Figures from uncommitted code say so: the revision alone would not reproduce them.
    # (The report and the README quoting it are not code.)
    not_code = [":!tests/bench/RESULTS.md", ":!README.md", ":!docs", ":!CHANGELOG.md"]
    changed = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", *not_code],
        capture_output=True,
        text=True,
    )
    revision = out.stdout.strip() or "unknown"
    return revision + (" with uncommitted changes" if changed.stdout else "")


async def run(quick: bool) -> list[str]:
    rows: list[str] = []
    users, messages = (20, 5) if quick else (100, 20)
    runs = 1 if quick else 3  # figures are medians over this many runs (RESULTS.md says so)
    c2a = await bench_customer_to_agent.main(users, messages, runs)
    b, base = c2a["bridge"], c2a["baseline"]
    rows.append(
        row(
            "customer → agent, messages/s (limits off)",
            f"{b['messages_per_s']:.0f}",
            f"{base['messages_per_s']:.0f}",
            f"{c2a['ratio']:.2f}",
            "≥ 500 and ratio ≥ 0.5",
            b["messages_per_s"] >= 500 and c2a["ratio"] >= 0.5,
        )
    )
    rows.append(
        row(
            "customer → agent, update → Udesk p50 / p99",
            f"{b['p50_ms']:.0f} / {b['p99_ms']:.0f} ms",
            f"{base['p50_ms']:.0f} / {base['p99_ms']:.0f} ms",
            "",
            "",
            None,
        )
    )
    quota = c2a["quota"]
    rows.append(
        row(
            f"Udesk calls in the busiest window, UDESK_RATE_LIMIT={quota['limit']}",
            f"{quota['busiest']} ({quota['calls_per_s']:.1f} calls/s)",
            f"{quota['allowed']} allowed",
            "",
            "never above the limit",
            quota["busiest"] <= quota["allowed"],
        )
    )
    pushes = 500 if quick else 2000
    a2c = await bench_agent_to_customer.main(pushes, 200.0, 200 if quick else 600, runs)
    fixed, bfixed = a2c["bridge"]["fixed"], a2c["baseline"]["fixed"]
    rows.append(
        row(
            "push ack p99 at 200 pushes/s",
            f"{fixed['p99_ms']:.1f} ms",
            f"{bfixed['p99_ms']:.1f} ms",
            "",
            "< 20 ms",
            fixed["p99_ms"] < 20,
        )
    )
    fast, bfast = a2c["bridge"]["fast"], a2c["baseline"]["fast"]
    rows.append(
        row(
            "pushes acknowledged per second (flat out)",
            f"{fast['pushes_per_s']:.0f}",
            f"{bfast['pushes_per_s']:.0f}",
            f"{a2c['ratio']:.2f}",
            "ratio ≥ 0.5",
            a2c["ratio"] >= 0.5,
        )
    )
    rows.append(
        row(
            "agent → customer, delivered messages/s (limits off)",
            f"{fast['delivered_per_s']:.0f}",
            "",
            "",
            "≥ 1000",
            fast["delivered_per_s"] >= 1000,
        )
    )
    rows.append(
        row(
            "push → sendMessage p50 / p99",
            f"{fast['push_to_send']['p50_ms']:.0f} / {fast['push_to_send']['p99_ms']:.0f} ms",
            "",
            "",
            "",
            None,
        )
    )
    sfixed, sfast = a2c["split"]["fixed"], a2c["split"]["fast"]
    sratio = sfast["pushes_per_s"] / bfast["pushes_per_s"]
    rows.append(
        row(
            "intake + worker processes: push ack p99 at 200 pushes/s",
            f"{sfixed['p99_ms']:.1f} ms",
            f"{bfixed['p99_ms']:.1f} ms",
            "",
            "< 20 ms",
            sfixed["p99_ms"] < 20,
        )
    )
    rows.append(
        row(
            "intake + worker processes: pushes acked / delivered per second",
            f"{sfast['pushes_per_s']:.0f} / {sfast['delivered_per_s']:.0f}",
            f"{bfast['pushes_per_s']:.0f}",
            f"{sratio:.2f}",
            "ratio ≥ 0.5; ≥ 1000 delivered",
            sratio >= 0.5 and sfast["delivered_per_s"] >= 1000,
        )
    )
    lim = a2c["limited"]
    rows.append(
        row(
            "Telegram limits on: messages/s, 429s",
            f"{lim['per_s']:.1f}/s, {lim['http_429']} × 429",
            "30/s allowed",
            "",
            "≥ 28/s, no 429",
            lim["per_s"] >= 28 and lim["http_429"] == 0,
        )
    )
    try:
        callcenter: Any = importlib.import_module("tests.bench.bench_callcenter")
    except ImportError:
        callcenter = None
    if callcenter is not None and hasattr(callcenter, "main"):
        cc = await callcenter.main()
        if isinstance(cc, dict) and "bridge" in cc:
            rows.append(
                row(
                    "call-center lookup p99",
                    f"{cc['bridge']['p99_ms']:.1f} ms",
                    f"{cc['baseline']['p99_ms']:.1f} ms",
                    "",
                    "< 20 ms",
                    cc["bridge"]["p99_ms"] < 20,
                )
            )
    loop = await bench_kill_loop.main(5 if quick else 20)
    rows.append(
        row(
            f"kill -9 ×{loop['kills']} of two replicas: recovery p50 / max",
            f"{loop['recovery_p50_s']:.2f} / {loop['recovery_max_s']:.2f} s",
            "60 s (QUEUE_LEASE)",
            "",
            "< 5 s",
            loop["recovery_max_s"] < 5,
        )
    )
    rows.append(
        row(
            "kill loop: lost or twice in Udesk / in Telegram; Telegram repeats",
            f"{loop['udesk_problems']} / {loop['chat_problems']}; {loop['telegram_repeats']}",
            f"{loop['writes']} + {loop['replies']} messages",
            "",
            "0 / 0; ≤ 1 per kill",
            loop["udesk_problems"] == 0
            and loop["chat_problems"] == 0
            and loop["telegram_repeats"] <= loop["kills"],
        )
    )
    soak = await bench_soak.main(10000, 20 if quick else 60)
    rows.append(
        row(
            "RSS with 10,000 open sessions: warm / after soak",
            f"{soak['warm_mb']:.0f} / {soak['after_mb']:.0f} MB",
            f"{soak['baseline_mb']:.0f} MB (bare interpreter)",
            "",
            "< 150 MB, flat",
            soak["after_mb"] < 150 and soak["after_mb"] - soak["warm_mb"] < 15,
        )
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs (about 2 minutes)")
    args = parser.parse_args()
    rows = asyncio.run(run(args.quick))
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = "\n".join(
        [
            "# Benchmark results",
            "",
            f"`make bench` on {machine()}, {stamp}, revision {git_revision()}"
            + (" (quick run, one run each)" if args.quick else "")
            + ". Simulators and driver in one process, the bridge (`udesk-bridge run`) in its "
            "own (intake + worker rows: two, the worker at `nice 10`), PostgreSQL on the same "
            "machine."
            + (
                ""
                if args.quick
                else " Throughput and latency figures, the bridge's and the "
                "baselines', are medians of three runs."
            ),
            "",
            "| measure | bridge | baseline (same run) | ratio | target | met |",
            "|---|---|---|---|---|---|",
            *rows,
            "",
        ]
    )
    RESULTS.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
