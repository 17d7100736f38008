"""From measured runs to ratios, a markdown table, JSON and a PNG chart.

Every ratio compares two cases of the same profile and the same round (the same stretch of
time on a noisy machine) and is then averaged over rounds. Pure except `write_chart`.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.cases import BASELINE

__all__ = [
    "COMPARISONS",
    "NARROW_PCT",
    "comparisons",
    "cores",
    "deadlock_verdict",
    "headline",
    "interval95",
    "interval_text",
    "loop_blocking",
    "markdown",
    "pair_ratios",
    "summarize",
    "summary_lines",
    "t_975",
    "write_chart",
]

Run = Mapping[str, Any]

# (numerator, denominator, what it answers, target or None). The gateway freezes its heap
# after startup by default (GATEWAY_GC_FREEZE), bare FastAPI does not: the first two pair
# like with like, the third is the gateway as deployed against bare FastAPI as it comes.
COMPARISONS: tuple[tuple[str, str, str, float | None], ...] = (
    (
        "gateway_async",
        "bare_async_freeze",
        "gateway async / bare async, both GC-frozen (cost of gateway + metrics)",
        0.97,
    ),
    (
        "gateway_async_nofreeze",
        "bare_async",
        "gateway async / bare async, neither GC-frozen (cost of gateway + metrics)",
        0.97,
    ),
    (
        "gateway_async",
        "bare_async",
        "gateway async / bare async, as deployed (only the gateway freezes)",
        None,
    ),
    ("gateway_legacy", "bare_def", "gateway legacy / bare def (same def app, mounted)", 1.5),
    ("gateway_legacy", "bare_async", "gateway legacy / bare async", 0.90),
    ("gateway_legacy", "bare_def_freeze", "gateway legacy / bare def, both GC-frozen", None),
    ("gateway_async", "gateway_legacy", "gateway async / gateway legacy (seed: 2.3x)", None),
    ("bare_async", "bare_def", "bare async / bare def (seed: 2.3x)", None),
    ("bare_async_freeze", "bare_async", "bare async, frozen / not (what freezing gives)", None),
    ("bare_async_sync", "bare_def", "bare async-calling-sync / bare def (seed: 0.92)", None),
    ("instrumented", "bare_async", "instrumentator / bare async (reference metrics cost)", None),
    ("bare_async", "ceiling", "bare async / ceiling (share of the framework's limit)", None),
    (
        "gateway_async_w2",
        "bare_async_w2",
        "2 workers: gateway async / bare async (pool halved per worker)",
        None,
    ),
    (
        "gateway_legacy_w2",
        "bare_def_w2",
        "2 workers: gateway legacy / bare def (pool halved per worker)",
        None,
    ),
    ("bare_async_w2", "bare_async", "bare async, 2 workers / 1 worker (scaling)", None),
)

# Student's t, two-sided 95 % (the 0.975 quantile), for 1 to 30 degrees of freedom.
T_975 = (
    12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
    2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
    2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423,
)  # fmt: skip
NARROW_PCT = 5.0  # an interval within +-5 % of its mean is what the issue calls narrow


def t_975(df: int) -> float:
    """Student's t 0.975 quantile for `df` degrees of freedom: a table up to 30, then the
    Cornish-Fisher expansion around the normal quantile (within 1e-4 there).

    >>> t_975(5), t_975(30), round(t_975(120), 3)
    (2.5706, 2.0423, 1.98)
    """
    if df < 1:
        raise ValueError(f"df={df}: expected at least 1 degree of freedom (two values)")
    if df <= len(T_975):
        return T_975[df - 1]
    z = statistics.NormalDist().inv_cdf(0.975)
    return (
        z
        + (z**3 + z) / (4 * df)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3)
    )


def interval95(values: Sequence[float]) -> dict[str, float | bool] | None:
    """The 95 % Student t interval of the mean of `values` (None for fewer than two):
    mean, low, high, half_width, plus_minus_pct (half width as % of the mean) and narrow
    (plus_minus_pct below NARROW_PCT).

    >>> i = interval95([1.0, 1.1, 0.9])
    >>> round(i["mean"], 3), round(i["half_width"], 4), round(i["plus_minus_pct"], 1), i["narrow"]
    (1.0, 0.2484, 24.8, False)
    """
    if len(values) < 2:
        return None
    mean = statistics.fmean(values)
    half = t_975(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    pct = 100.0 * half / abs(mean) if mean else math.inf
    return {
        "mean": mean,
        "low": mean - half,
        "high": mean + half,
        "half_width": half,
        "plus_minus_pct": pct,
        "narrow": pct < NARROW_PCT,
    }


def _ok_rps(run: Run) -> float:
    return float(run["wrk"]["ok_per_second"])


def _index(runs: Iterable[Run]) -> dict[tuple[str, int], dict[str, Run]]:
    by_slot: dict[tuple[str, int], dict[str, Run]] = defaultdict(dict)
    for run in runs:
        by_slot[(run["profile"], run["round"])][run["case"]] = run
    return by_slot


def pair_ratios(runs: Iterable[Run], numerator: str, denominator: str) -> dict[str, list[float]]:
    """Per profile, numerator/denominator req/s for each round where both ran (and the
    denominator served something)."""
    found: dict[str, list[float]] = defaultdict(list)
    for (profile, _round), cases in sorted(_index(runs).items()):
        top, bottom = cases.get(numerator), cases.get(denominator)
        if top is None or bottom is None or _ok_rps(bottom) <= 0:
            continue
        found[profile].append(_ok_rps(top) / _ok_rps(bottom))
    return dict(found)


def cores(run: Run) -> dict[str, float]:
    """Cores used during the measured window by server, PostgreSQL, wrk and everything else."""
    cpu, seconds = run["cpu"], float(run["wrk"]["duration_s"]) or 1.0
    busy = cpu["machine_busy_s"]
    known = cpu["server_s"] + cpu["postgres_s"] + cpu["wrk_s"]
    return {
        "server": cpu["server_s"] / seconds,
        "postgres": cpu["postgres_s"] / seconds,
        "wrk": cpu["wrk_s"] / seconds,
        "other": max(busy - known, 0.0) / seconds,
        "idle": max(cpu["machine_total_s"] - busy, 0.0) / seconds,
    }


def _per_request_ms(run: Run, key: str) -> float | None:
    # CPU was read at the window's edges, so divide by the answers inside the window
    requests = int(run["wrk"].get("measured_requests", run["wrk"]["requests"]))
    return 1000.0 * run["cpu"][key] / requests if requests else None


def _mean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return statistics.fmean(kept) if kept else None


def summarize(runs: Sequence[Run], order: Sequence[str]) -> list[dict[str, Any]]:
    """One row per (profile, case): means over rounds, ratio to the baseline, total errors."""
    rows = []
    profiles = list(dict.fromkeys(r["profile"] for r in runs))
    for profile in profiles:
        for name in order:
            mine = [r for r in runs if r["profile"] == profile and r["case"] == name]
            if not mine:
                continue
            per_round = pair_ratios(runs, name, BASELINE).get(profile, [])
            shares = [cores(r) for r in mine]
            rows.append(
                {
                    "profile": profile,
                    "case": name,
                    "title": mine[0]["title"],
                    "rounds": len(mine),
                    "ok_per_second": _mean([_ok_rps(r) for r in mine]),
                    "ratio": _mean(per_round),
                    "ratio_min": min(per_round) if per_round else None,
                    "ratio_max": max(per_round) if per_round else None,
                    "p50_ms": _mean([r["wrk"]["latency_ms"]["p50"] for r in mine]),
                    "p99_ms": max(r["wrk"]["latency_ms"]["p99"] for r in mine),
                    "errors": {
                        kind: sum(r["wrk"]["errors"][kind] for r in mine)
                        for kind in mine[0]["wrk"]["errors"]
                    },
                    "server_ms_per_req": _mean([_per_request_ms(r, "server_s") for r in mine]),
                    "postgres_ms_per_req": _mean([_per_request_ms(r, "postgres_s") for r in mine]),
                    "wrk_ms_per_req": _mean([_per_request_ms(r, "wrk_s") for r in mine]),
                    "cores": {
                        k: round(statistics.fmean(s[k] for s in shares), 2) for k in shares[0]
                    },
                }
            )
    return rows


def comparisons(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """The issue's headline ratios per profile: per-round values, mean, its 95 % interval
    (None from a single round) and the target where the issue sets one."""
    found = []
    for top, bottom, label, target in COMPARISONS:
        for profile, values in pair_ratios(runs, top, bottom).items():
            mean = statistics.fmean(values)
            interval = interval95(values)
            found.append(
                {
                    "profile": profile,
                    "label": label,
                    "numerator": top,
                    "denominator": bottom,
                    "per_round": [round(v, 3) for v in values],
                    "mean": round(mean, 3),
                    "interval95": None
                    if interval is None
                    else {
                        k: v if isinstance(v, bool) else round(v, 4) for k, v in interval.items()
                    },
                    "target": target,
                    # judged on the shown value, so a table never says 0.970 and MISSED
                    "met": None if target is None else round(mean, 3) >= target,
                }
            )
    return found


REQUESTS = "gateway_requests"
BLOCKED = "gateway_loop_blocked_seconds"
BLOCKING = "gateway_loop_blocking_requests"
LAG = "gateway_event_loop_lag_seconds"


def _metric_sum(samples: Mapping[str, float], name: str) -> float | None:
    found = [v for k, v in samples.items() if k == name or k.startswith(name + "{")]
    return sum(found) if found else None


def loop_blocking(run: Run) -> dict[str, float | None]:
    """What the gateway's metrics saw in one run: loop time blocked per request, the share
    of requests that blocked the loop, and the mean event-loop lag (None if not exposed)."""
    samples = run.get("gateway_metrics") or {}
    served = _metric_sum(samples, REQUESTS + "_total")  # the same span as the counters below
    requests = int(served if served is not None else run["wrk"]["requests"])
    # a labelled counter has no sample until it first counts: exposed but absent means 0
    absent = 0.0 if served is not None else None
    blocked = _metric_sum(samples, BLOCKED + "_total")
    blocked = absent if blocked is None else blocked
    blocking = _metric_sum(samples, BLOCKING + "_total")
    blocking = absent if blocking is None else blocking
    lag_sum, lag_count = _metric_sum(samples, LAG + "_sum"), _metric_sum(samples, LAG + "_count")
    return {
        "blocked_ms_per_request": None
        if blocked is None or not requests
        else 1000 * blocked / requests,
        "blocking_share": None if blocking is None or not requests else blocking / requests,
        "mean_lag_ms": None if lag_sum is None or not lag_count else 1000 * lag_sum / lag_count,
    }


def deadlock_verdict(run: Run) -> str:
    """'deadlocked' when nothing was served or answers stopped (no answer in the last 2 s or
    quarter of the window), 'completed' when answers kept coming and nothing failed."""
    w = run["wrk"]
    ok, errors = int(w["ok"]), sum(w["errors"].values())
    stalled = w.get("stalled_s")
    if ok == 0 or (stalled is not None and stalled > max(2.0, 0.25 * float(w["duration_s"]))):
        return "deadlocked"
    return "completed" if errors == 0 else "served with errors"


def _fmt(value: float | None, spec: str = ".0f") -> str:
    return "n/a" if value is None else format(value, spec)


def _errors(errors: Mapping[str, int]) -> str:
    shown = [f"{kind} {count}" for kind, count in errors.items() if count]
    return ", ".join(shown) if shown else "0"


def interval_text(comparison: Mapping[str, Any]) -> str:
    """'0.982 ± 2.1 % [0.961, 1.003]': a comparison's mean with its 95 % interval, or
    'x.xxx (1 round, no interval)'."""
    i, mean = comparison.get("interval95"), comparison["mean"]
    if i is None:
        return f"{mean:.3f} (1 round, no interval)"
    return f"{mean:.3f} ± {i['plus_minus_pct']:.1f} % [{i['low']:.3f}, {i['high']:.3f}]"


def _narrow(comparison: Mapping[str, Any]) -> str:
    i = comparison.get("interval95")
    if i is None:
        return "n/a"
    return "yes" if i["narrow"] else "no"


def _verdict(comparison: Mapping[str, Any]) -> str:
    target = comparison["target"]
    if target is None:
        return ""
    return f">= {target} ({'met' if comparison['met'] else 'MISSED'})"


def summary_lines(comparisons: Sequence[Mapping[str, Any]]) -> list[str]:
    """What a run prints at its end: per ratio and profile, the mean with its 95 % interval,
    whether that is narrower than ±5 %, the target, and the per-round values."""
    lines = []
    for c in comparisons:
        target = _verdict(c)
        lines.append(
            f"{c['profile']:>8}  {c['label']}: {interval_text(c)}, "
            f"narrower than ±{NARROW_PCT:g} %: {_narrow(c)}"
            + (f", target {target}" if target else "")
            + f"; rounds {', '.join(f'{v:.3f}' for v in c['per_round'])}"
        )
    return lines


def headline(result: Mapping[str, Any]) -> list[str]:
    """The issue's ratios as one table, a column per profile (what bench/RESULTS.md shows)."""
    profiles = [
        p for p in result["profiles"] if any(r["profile"] == p["name"] for r in result["runs"])
    ]
    lines = [
        "## Headline (same-round ratios, mean over rounds ± half its 95 % interval)",
        "",
        "| ratio | " + " | ".join(p["title"] for p in profiles) + " | target |",
        "|---|" + "---:|" * len(profiles) + "---|",
    ]
    found = {(c["profile"], c["numerator"], c["denominator"]): c for c in result["comparisons"]}
    for top, bottom, label, target in COMPARISONS:
        cells = []
        for p in profiles:
            c = found.get((p["name"], top, bottom))
            i = None if c is None else c.get("interval95")
            cells.append(
                "n/a"
                if c is None
                else f"{c['mean']:.3f}" + ("" if i is None else f" ± {i['plus_minus_pct']:.1f} %")
            )
        met = [
            found[k]["met"] for k in found if k[1:] == (top, bottom) and found[k]["met"] is not None
        ]
        judged = "not measured" if not met else "met" if all(met) else "MISSED"
        verdict = "" if target is None else f">= {target} ({judged})"
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {verdict} |")
    errors = [
        sum(sum(r["wrk"]["errors"].values()) for r in result["runs"] if r["profile"] == p["name"])
        for p in profiles
    ]
    lines.append("| errors, all runs | " + " | ".join(str(e) for e in errors) + " | 0 |")
    return [*lines, ""]


def markdown(result: Mapping[str, Any]) -> str:
    """The results as markdown: settings, the table per profile, ratios, CPU, deadlock."""
    s = result["settings"]
    lines = [
        f"# Benchmark run {result['started']}",
        "",
        f"Command: `{result['command']}`",
        "",
        f"{s['connections']} connections, wrk {s['threads']} threads, {s['warmup_s']} s warm-up "
        f"+ {s['duration_s']} s measured per run, {s['rounds']} round(s) of the headline "
        f"cases and {s.get('reference_rounds', s['rounds'])} of the reference cases "
        "(alternating order, interleaved), "
        f"pool {s['pool_size']}+{s['max_overflow']}, threadpool {s['threadpool_size']}, "
        f"{s['users']} users, wrk timeout {s['timeout_s']} s. Cases with 2 workers divide "
        f"the pool between them (pool {s['pool_size'] // 2} per worker); the threadpool is "
        "per worker.",
        "",
    ]
    lines += headline(result)
    for profile in result["profiles"]:
        rows = [r for r in result["summary"] if r["profile"] == profile["name"]]
        if not rows:
            continue
        lines += [
            f"## {profile['title']}",
            "",
            "| case | req/s (2xx) | vs bare def | p50 ms | p99 ms | errors "
            "| server CPU ms/req | PostgreSQL CPU ms/req | wrk CPU ms/req "
            "| cores: server / pg / wrk / other / idle |",
            "|---|---:|---:|---:|---:|---|---:|---:|---:|---|",
        ]
        for r in rows:
            spread = (
                f" ({_fmt(r['ratio_min'], '.2f')}-{_fmt(r['ratio_max'], '.2f')})"
                if r["rounds"] > 1 and r["ratio"] is not None
                else ""
            )
            c = r["cores"]
            lines.append(
                f"| {r['title']} | {_fmt(r['ok_per_second'])} | {_fmt(r['ratio'], '.2f')}{spread} "
                f"| {_fmt(r['p50_ms'])} | {_fmt(r['p99_ms'])} | {_errors(r['errors'])} "
                f"| {_fmt(r['server_ms_per_req'], '.2f')} "
                f"| {_fmt(r['postgres_ms_per_req'], '.2f')} "
                f"| {_fmt(r['wrk_ms_per_req'], '.2f')} "
                f"| {c['server']} / {c['postgres']} / {c['wrk']} / {c['other']} / {c['idle']} |"
            )
        lines.append("")
    lines += [
        "## Ratios from the same rounds",
        "",
        "Each ratio's mean over rounds with the 95 % interval of that mean (Student t on "
        f"the per-round values), and whether the interval is narrower than ±{NARROW_PCT:g} %.",
        "",
        f"| profile | ratio | per round | mean, 95 % interval | narrower than ±{NARROW_PCT:g} % "
        "| target |",
        "|---|---|---|---|---|---|",
    ]
    for c in result["comparisons"]:
        per_round = ", ".join(f"{v:.3f}" for v in c["per_round"])
        lines.append(
            f"| {c['profile']} | {c['label']} | {per_round} | {interval_text(c)} "
            f"| {_narrow(c)} | {_verdict(c)} |"
        )
    lines.append("")
    if result.get("deadlock"):
        lines += [
            "## Deadlock reference: pool 20 (no overflow), threadpool 40, plain profile",
            "",
            "| case | seconds | 2xx served | errors | last answer before the end (s) "
            "| unanswered at the end | verdict |",
            "|---|---:|---:|---|---:|---:|---|",
        ]
        for run in result["deadlock"]:
            w = run["wrk"]
            lines.append(
                f"| {run['title']} | {w['duration_s']:.0f} | {w['ok']} | {_errors(w['errors'])} "
                f"| {_fmt(w.get('stalled_s'), '.1f')} | {w.get('unanswered_at_end', 'n/a')} "
                f"| {run['verdict']} |"
            )
        lines.append("")
    blocking = [r for r in result["runs"] if r.get("gateway_metrics") is not None]
    if blocking:
        lines += [
            "## The gateway's own loop-blocking metrics",
            "",
            f"From `{BLOCKED}`, `{BLOCKING}` and `{LAG}`, per request counted by "
            f"`{REQUESTS}`, scraped from /metrics once the server had finished the run "
            "(warm-up included).",
            "",
            "| profile | round | case | loop blocked ms/request | requests that blocked "
            "the loop | mean loop lag ms |",
            "|---|---:|---|---:|---:|---:|",
        ]
        for run in blocking:
            b = loop_blocking(run)
            lines.append(
                f"| {run['profile']} | {run['round']} | {run['case']} "
                f"| {_fmt(b['blocked_ms_per_request'], '.3f')} "
                f"| {_fmt(b['blocking_share'], '.0%')} | {_fmt(b['mean_lag_ms'], '.1f')} |"
            )
        lines.append("")
    errors = sum(sum(r["wrk"]["errors"].values()) for r in result["runs"])
    lines += [f"Errors over all measured (non-deadlock) runs: {errors}.", ""]
    lines += ["## Machine and versions", "", "```"]
    for key, value in {**result["machine"], **result["versions"]}.items():
        lines.append(f"{key}: {value}")
    lines += ["```", ""]
    return "\n".join(lines)


def write_chart(result: Mapping[str, Any], path: Path) -> None:
    """A bar chart of every case's req/s relative to bare def, one bar group per profile."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["summary"]
    names = list(dict.fromkeys(r["case"] for r in rows))
    profiles = [
        p["name"] for p in result["profiles"] if any(r["profile"] == p["name"] for r in rows)
    ]
    width = 0.8 / max(len(profiles), 1)
    fig, ax = plt.subplots(figsize=(11, 5))
    for i, profile in enumerate(profiles):
        values = {r["case"]: r["ratio"] or 0.0 for r in rows if r["profile"] == profile}
        xs = [n + i * width - 0.4 + width / 2 for n in range(len(names))]
        bars = ax.bar(xs, [values.get(name, 0.0) for name in names], width, label=profile)
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(names)), names, rotation=20, ha="right")
    ax.set_ylabel("2xx req/s relative to bare_def (same round)")
    ax.set_title(
        f"gateway benchmark {result['started']} ({result['settings']['connections']} conns)"
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
