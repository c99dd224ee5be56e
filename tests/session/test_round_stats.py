"""The figures of a compare round (pure): spreads, counts by outcome, the ranking with its
ratios and ties, and the cost per run (a session's own price, genai-prices' list price,
unknown); the sessions file's ``price`` table."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tui.config import ConfigError, load_config
from tui.config.schema import Price
from tui.session.prices import PriceSource, is_local_url, run_cost
from tui.session.round_stats import ColumnStats, RunFigures, Spread, column_stats, rank
from tui.store.stats_records import Percentiles


def ok(ttft: float, tps: float = 100.0, duration: float = 500.0, **kwargs: object) -> RunFigures:
    """A completed run with these figures."""
    return RunFigures(
        f"run-{ttft}-{tps}",
        "completed",
        "stop",
        ttft_ms=ttft,
        tokens_per_s=tps,
        duration_ms=duration,
        output_tokens=50,
        **kwargs,  # type: ignore[arg-type]
    )


def failed(message: str = "HTTP 503") -> RunFigures:
    """A failed run."""
    return RunFigures("run-failed", "failed", "error", error=message)


def column(name: str, runs: list[RunFigures]) -> ColumnStats:
    """The stats of column ``name`` (model ``m-name``)."""
    return column_stats(name, f"m-{name}", runs, planned=len(runs))


# -- spreads and counts ------------------------------------------------------------------


def test_spread_takes_the_stores_quantiles() -> None:
    values = [5.0, 1.0, 3.0, 2.0, 4.0]
    spread = Spread.of(values)
    assert (spread.count, spread.p25, spread.p50, spread.p75) == (5, 2.0, 3.0, 4.0)
    assert spread.p95 == pytest.approx(4.8)
    # the same definition as the store's session statistics
    stored = Percentiles.of(list(values))
    assert (stored.p50, stored.p95) == (spread.p50, spread.p95)
    assert Spread.of([]) == Spread()
    one = Spread.of([7.0])
    assert (one.p25, one.p50, one.p75, one.p95) == (7.0, 7.0, 7.0, 7.0)


def test_a_column_counts_runs_as_the_store_does_and_measures_successes_only() -> None:
    runs = [
        ok(100.0),
        ok(300.0),
        RunFigures("cut", "incomplete", "length", ttft_ms=200.0, output_tokens=10),
        failed("HTTP 503: overloaded"),
        RunFigures("stopped", "cancelled", "cancelled", ttft_ms=1.0),
        RunFigures("live", "running", None),
    ]
    stats = column("a", runs)
    assert (stats.runs, stats.successes, stats.failures, stats.cancelled) == (5, 3, 1, 1)
    # a cut answer is a success (tone warn), the failed and cancelled runs measure nothing
    assert (stats.ttft_ms.count, stats.ttft_ms.p50) == (3, 200.0)
    assert stats.output_tokens == 50.0
    assert stats.last_error == "HTTP 503: overloaded"
    assert stats.cost_per_run_usd is None and stats.priced_runs == 0


# -- the ranking --------------------------------------------------------------------------


def test_a_clear_winner_is_ranked_first_with_ratios_to_it() -> None:
    fast = column("fast", [ok(100.0), ok(110.0), ok(120.0)])
    slow = column("slow", [ok(200.0), ok(210.0), ok(220.0)])
    broken = column("broken", [failed(), failed()])
    ranking = rank([slow, broken, fast])
    assert [r.session for r in ranking.ranks] == ["fast", "slow", "broken"]
    first, second, last = ranking.ranks
    assert (first.place, first.ratio, first.tied_with) == (1, 1.0, ())
    assert second.place == 2 and second.ratio == pytest.approx(210.0 / 110.0)
    assert last.place is None and last.reason == "no successful run (2 failed)"
    assert ranking.winner == "fast" and ranking.ties == []


def test_tokens_per_second_ranks_the_highest_first() -> None:
    quick = column("quick", [ok(100.0, tps=300.0), ok(100.0, tps=320.0)])
    steady = column("steady", [ok(100.0, tps=100.0), ok(100.0, tps=110.0)])
    ranking = rank([steady, quick], by="tps")
    assert [r.session for r in ranking.ranks] == ["quick", "steady"]
    assert ranking.ranks[1].ratio == pytest.approx(310.0 / 105.0)


def test_columns_whose_spreads_overlap_are_tied_and_share_a_place() -> None:
    a = column("a", [ok(100.0), ok(140.0), ok(180.0)])  # p25-p75: 120-160
    b = column("b", [ok(110.0), ok(150.0), ok(190.0)])  # 130-170: overlaps a
    c = column("c", [ok(400.0), ok(410.0), ok(420.0)])  # 405-415: clearly slower
    ranking = rank([c, b, a])
    places = {r.session: r.place for r in ranking.ranks}
    assert places == {"a": 1, "b": 1, "c": 3}
    assert ranking.ranks[0].tied_with == ("b",) and ranking.ranks[1].tied_with == ("a",)
    assert ranking.ties == [("a", "b")]
    assert ranking.winner is None
    assert ranking.ranks[2].tied_with == ()


def test_columns_without_a_measure_rank_last_with_the_reason() -> None:
    none_yet = column("none", [])
    cancelled = column("cancelled", [RunFigures("x", "cancelled", "cancelled")])
    no_tps = column("no tps", [ok(100.0, tps=None)])  # type: ignore[arg-type]
    ranking = rank([none_yet, cancelled, no_tps], by="tps")
    reasons = {r.session: r.reason for r in ranking.ranks}
    assert reasons == {
        "none": "no run finished",
        "cancelled": "no successful run (1 cancelled)",
        "no tps": "no successful run measured it",
    }
    assert all(r.place is None for r in ranking.ranks) and ranking.winner is None


# -- prices -------------------------------------------------------------------------------


def test_a_sessions_own_price_prices_its_runs() -> None:
    price = Price(input_per_mtok=0.15, output_per_mtok=0.60)
    source = PriceSource("sim", "sim", price)
    assert run_cost(source, 1_000_000, 0) == pytest.approx(0.15)
    assert run_cost(source, 2000, 500) == pytest.approx((2000 * 0.15 + 500 * 0.60) / 1e6)
    cached = PriceSource("m", "sim", Price(1.0, 2.0, cached_input_per_mtok=0.5))
    assert run_cost(cached, 1000, 0, cached_tokens=400) == pytest.approx((600 + 200) / 1e6)
    # no reported usage: unknown
    assert run_cost(source, None, 500) is None
    runs = [
        ok(100.0, input_tokens=1000, cost_usd=0.001),
        ok(120.0, input_tokens=1000, cost_usd=0.003),
        failed(),
    ]
    stats = column("priced", runs)
    assert stats.cost_per_run_usd == pytest.approx(0.002) and stats.priced_runs == 2
    assert stats.cost_total_usd == pytest.approx(0.004)


def test_unknown_prices_are_unknown_never_a_guess() -> None:
    assert run_cost(PriceSource("gpt-4o-mini", "sim"), 1000, 500) is None
    assert run_cost(PriceSource("llama3.2", "http://localhost:11434/v1"), 1000, 500) is None
    assert run_cost(PriceSource("gpt-4o-mini", "http://10.0.0.7:8000/v1"), 1000, 500) is None
    assert is_local_url("http://127.0.0.1:8000/v1") and is_local_url("http://[::1]:8000/v1")
    assert not is_local_url("https://api.openai.com/v1")
    unknown = PriceSource("no-such-model-anywhere-x9", "https://api.openai.com/v1")
    assert run_cost(unknown, 1000, 500) is None


def test_list_prices_come_from_genai_prices_for_the_provider_of_the_url() -> None:
    from genai_prices import Usage, calc_price

    openai = PriceSource("gpt-4o-mini", "https://api.openai.com/v1")
    expected = calc_price(
        Usage(input_tokens=1000, output_tokens=500),
        "gpt-4o-mini",
        provider_api_url="https://api.openai.com/v1",
    ).total_price
    assert run_cost(openai, 1000, 500) == pytest.approx(float(expected))
    assert run_cost(openai, 1000, 500) > 0  # type: ignore[operator]
    # cached input tokens are cheaper
    cost = run_cost(openai, 1000, 500)
    cached = run_cost(openai, 1000, 500, cached_tokens=800)
    assert cost is not None and cached is not None and cached < cost
    # a gateway genai-prices does not know: priced by the model name
    gateway = PriceSource("gpt-4o-mini", "https://gateway.example.com/v1")
    assert run_cost(gateway, 1000, 500) == pytest.approx(float(expected))


def test_estimated_token_counts_are_never_priced() -> None:
    price = PriceSource("m", "sim", Price(1.0, 1.0))
    run = RunFigures("r", "completed", "stop", output_tokens=40, input_tokens=100)
    assert run.priced(price).cost_usd == pytest.approx(140 / 1e6)
    assert run.priced(None).cost_usd is None
    estimated = RunFigures(
        "r", "completed", "stop", output_tokens=40, input_tokens=100, tokens_estimated=True
    )
    assert estimated.priced(price).cost_usd is None


def test_genai_prices_is_imported_only_when_a_list_price_is_needed() -> None:
    code = textwrap.dedent(
        """
        import sys
        import tui.session.rounds, tui.session.round_stats, tui.session.prices
        from tui.config.schema import Price
        from tui.session.prices import PriceSource, run_cost
        run_cost(PriceSource("sim", "sim"), 10, 10)
        run_cost(PriceSource("gpt-5", "sim", Price(1.0, 2.0)), 10, 10)
        assert "genai_prices" not in sys.modules, "imported too early"
        run_cost(PriceSource("gpt-5", "https://api.openai.com/v1"), 10, 10)
        assert "genai_prices" in sys.modules
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# -- the sessions file's price table -----------------------------------------------------


def test_price_is_read_from_defaults_and_sessions_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "sessions.toml"
    path.write_text(
        textwrap.dedent(
            """
            [defaults]
            price = { input_per_mtok = 0.15, output_per_mtok = 0.60 }
            [[sessions]]
            name = "inherits"
            model = "m"
            prompt = "p"
            [[sessions]]
            name = "own"
            model = "m"
            prompt = "p"
            price = { input_per_mtok = 1, output_per_mtok = 4, cached_input_per_mtok = 0.5 }
            """
        ),
        encoding="utf-8",
    )
    config = load_config(path, environ={})
    assert config.session("inherits").price == Price(0.15, 0.60)
    assert config.session("own").price == Price(1.0, 4.0, 0.5)

    path.write_text(
        textwrap.dedent(
            """
            [[sessions]]
            name = "bad"
            model = "m"
            prompt = "p"
            price = { input_per_mtok = -1, outptu_per_mtok = 2 }
            """
        ),
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    messages = {p.key: p.message for p in info.value.problems}
    assert all(p.session == "bad" for p in info.value.problems)
    assert messages["price.input_per_mtok"] == "price.input_per_mtok must be >= 0, got -1"
    assert "did you mean 'output_per_mtok'" in messages["price.outptu_per_mtok"]
    assert "price needs output_per_mtok" in messages["price.output_per_mtok"]
