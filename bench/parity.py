"""Parity: the dashboard shows for simulated sessions what ``tokentop run`` measures for them.

Four sessions on ``base_url = "sim"`` (the built-in simulator, which tokentop starts as its
own child process, exactly as a user runs them) stream once through the headless face
(``run_sessions``, no store) and once through the dashboard (``TokentopApp`` under Textual's
headless driver, overview on screen, the garbage collector tuned as ``tokentop`` does),
alternately, ``repeat`` rounds. Per session and round the dashboard's TTFT, tokens/s and
inter-token p50 are divided by the headless ones; the figure is the median of those ratios
and its worst case. Bar: the dashboard within 10% of headless.
"""

from __future__ import annotations

import asyncio
import io
import statistics
from typing import Any

from bench.common import Figure, PartResult, part_main
from tui.config import AppConfig, ReconnectPolicy, SessionConfig, UiConfig
from tui.headless import RunOptions, run_sessions

TIMINGS = (
    "ttft=0.25,tps=50,tokens=150,jitter=0.2,seed=1",
    "ttft=0.05,tps=50,tokens=150,jitter=0.2,seed=2",
    "ttft=0.25,tps=50,tokens=150,jitter=0.2,seed=3",
    "ttft=0.25,tps=50,tokens=150,jitter=0.2,seed=4",
)
"""Four models at real rates (50 tokens/s), started together as the dashboard starts."""

METRICS = ("ttft_ms", "tokens_per_s", "itl_p50_ms")


def sessions() -> tuple[SessionConfig, ...]:
    """The four simulated sessions (both APIs)."""
    return tuple(
        SessionConfig(
            name=f"s{i}",
            model="sim",
            prompt="Compare these.",
            base_url="sim",
            api="chat" if i % 2 else "responses",
            headers={"X-Sim-Timing": timing},
            reconnect=ReconnectPolicy(max_retries=0),
        )
        for i, timing in enumerate(TIMINGS)
    )


def _figures(result: dict[str, Any]) -> dict[str, float | None]:
    itl = result.get("itl_ms") or {}
    return {
        "ttft_ms": result.get("ttft_ms"),
        "tokens_per_s": result.get("tokens_per_s"),
        "itl_p50_ms": itl.get("p50") if isinstance(itl, dict) else None,
    }


async def headless_round() -> dict[str, dict[str, float | None]]:
    """Each session's metrics as ``tokentop run --jsonl`` reports them."""
    import json

    out, err = io.StringIO(), io.StringIO()
    await run_sessions(sessions(), RunOptions(jsonl=True, store=False), out=out, err=err)
    results = [json.loads(line) for line in out.getvalue().splitlines()]
    return {r["session"]: _figures(r) for r in results if r.get("type") == "result"}


async def dashboard_round() -> dict[str, dict[str, float | None]]:
    """Each session's metrics as the dashboard shows them (its accumulators)."""
    from tui.ui.app import TokentopApp

    config = AppConfig(path=None, sessions=sessions(), ui=UiConfig(), keymap={})
    app = TokentopApp(config, freeze_gc=True)
    found: dict[str, dict[str, float | None]] = {}
    async with app.run_test(size=(160, 50)) as pilot:
        while not (app.begun and all(s.current and s.current.done for s in app.sessions)):
            await pilot.pause(0.05)
        for live in app.sessions:
            assert live.current is not None
            found[live.name] = _figures(live.current.accumulator.result())
    return found


def measure(repeat: int = 3) -> PartResult:
    """Alternate headless and dashboard rounds; compare their metrics per session."""
    ratios: dict[str, list[float]] = {m: [] for m in METRICS}
    raw: list[str] = []
    for round_no in range(max(1, repeat)):
        headless = asyncio.run(headless_round())
        dashboard = asyncio.run(dashboard_round())
        for name, h in headless.items():
            d = dashboard.get(name, {})
            for metric in METRICS:
                hv, dv = h.get(metric), d.get(metric)
                if hv and dv:
                    ratios[metric].append(dv / hv)
            raw.append(
                f"round {round_no + 1} {name}: "
                + ", ".join(f"{m} {h.get(m)} / {d.get(m)}" for m in METRICS)
            )
    result = PartResult("parity")
    for metric in METRICS:
        values = ratios[metric]
        if not values:
            result.figures.append(Figure("parity", metric, "within 10%", "no data", False))
            continue
        median = statistics.median(values)
        worst = max(values, key=lambda v: abs(v - 1))
        result.figures.append(
            Figure(
                "parity",
                f"{metric}: dashboard / headless, median (worst)",
                "0.90x-1.10x",
                f"{median:.2f}x ({worst:.2f}x)",
                0.9 <= median <= 1.1,
                f"{len(values)} pairs",
            )
        )
    result.notes = ["headless / dashboard per session: " + "; ".join(raw)]
    return result


if __name__ == "__main__":
    part_main("parity", measure)
