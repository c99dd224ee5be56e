"""The metrics bar says what each figure measures: the inter-chunk latency as a chunk gap,
TPOT once tokens are counted, ``est.`` for a tokenizer's estimate, chunks (not tokens) when
nothing better counted them, and a client-bound mark when tokentop's own lag made the
timing untrustworthy; in a session's compare column too, from a real simulator run."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from textual.app import App, ComposeResult

from tests.ui.conftest import app_config, sim_session, wait_until
from tui.session import SessionRun
from tui.session.loop_lag import ClientLag
from tui.stream.accumulate import RunAccumulator
from tui.stream.metrics import MetricsSnapshot, TokensSource
from tui.ui.app import TokentopApp
from tui.ui.screens.compare import CompareScreen
from tui.ui.widgets.metrics_bar import MetricsBar, client_bound_ms, metrics_content

SNAPSHOT = MetricsSnapshot(
    ttft_s=0.312,
    itl_p50_s=0.018,
    itl_p95_s=0.044,
    itl_p99_s=0.06,
    tokens_per_s=52.3,
    rolling_tokens_per_s=None,
    chunks=400,
    output_tokens=512,
    input_tokens=24,
    tokens_estimated=False,
    duration_s=8.4,
    elapsed_s=8.4,
    finished=True,
    tokens_source="usage",
    tpot_s=0.0158,
)


def _text(source: TokensSource, *, tpot: float | None = 0.0158, bound: float | None = None) -> str:
    snapshot = replace(
        SNAPSHOT, tokens_source=source, tokens_estimated=source != "usage", tpot_s=tpot
    )
    return metrics_content(snapshot, bound).plain


def test_server_usage_names_the_chunk_gap_and_tpot() -> None:
    assert _text("usage") == (
        "TTFT 312 ms · chunk gap p50 18 ms · p95 44 ms · TPOT 16 ms · 52.3 tok/s · in 24 · "
        "out 512 · elapsed 8.4 s · usage ✓"
    )
    assert "ITL" not in _text("usage")


def test_a_tokenizer_estimate_says_est_on_every_figure_it_made() -> None:
    text = _text("estimated")
    assert "TPOT 16 ms est." in text and "52.3 tok/s est." in text and "out 512 est." in text
    assert "usage ✓" not in text


def test_chunks_are_called_chunks_and_have_no_tpot() -> None:
    text = _text("chunks", tpot=None)
    assert "52.3 chunks/s" in text and "out 512 chunks" in text
    assert "tok" not in text and "TPOT" not in text and "est." not in text


def test_a_client_bound_run_is_marked_with_its_lag() -> None:
    assert _text("usage", bound=72.4).endswith("usage ✓ · ▲ client-bound (tokentop lag p99 72 ms)")
    assert "client-bound" not in _text("usage")
    run = SessionRun("r", "p", RunAccumulator("r", "s", "chat", "sim", "p"), 0.0)
    assert client_bound_ms(run) is None and client_bound_ms(None) is None
    run.client_lag = ClientLag(p99_ms=12.0, max_ms=20.0, samples=40)
    assert client_bound_ms(run) is None  # a lag under the bound: the server's timing
    run.client_lag = ClientLag(p99_ms=72.4, max_ms=90.0, samples=40)
    assert client_bound_ms(run) == pytest.approx(72.4)


class _BarHost(App[None]):
    def compose(self) -> ComposeResult:
        yield MetricsBar()


async def test_the_bar_shows_the_mark_of_the_run_it_shows() -> None:
    app = _BarHost()
    async with app.run_test() as pilot:
        bar = app.query_one(MetricsBar)
        run = SessionRun("r", "p", RunAccumulator("r", "s", "chat", "sim", "p"), 0.0)
        run.client_lag = ClientLag(p99_ms=80.0, max_ms=90.0, samples=40)
        bar.show_run(SNAPSHOT, run)
        await pilot.pause()
        assert "▲ client-bound (tokentop lag p99 80 ms)" in str(bar.render())
        bar.show_run(None, None)
        await pilot.pause()
        assert str(bar.render()) == "no metrics yet"


async def test_a_compare_column_names_its_figures(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None]
) -> None:
    config = app_config(sim_session(sim_url, "one", key=sim_key, timing="ttft=0.01,tokens=20"))
    app = TokentopApp(config, theme_dirs=theme_dirs)
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_until(pilot, lambda: app.begun and app.sessions[0].state == "done")
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, CompareScreen), what="compare")
        bar = app.screen.query_one(MetricsBar)
        await wait_until(pilot, lambda: bar.snapshot is not None, what="the column's metrics")
        text = str(bar.render())
        assert "chunk gap p50" in text and "ITL" not in text
        assert "tok/s" in text and "usage ✓" in text  # the simulator sends usage
        assert "TPOT" in text
