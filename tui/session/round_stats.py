"""The figures of a compare round: per column (session) and a ranking of the columns. Pure.

Every figure is computable at any moment from the runs that have finished so far, so a view
may redraw it after each run. The definitions:

- A run counts as the store counts it (:func:`tui.store.stats_records.outcome`): a
  *success* is a run whose tone is ``ok`` or ``warn`` (a cut answer still measured the
  model), a *failure* one whose tone is ``failed``; cancelled runs count as neither.
- TTFT, tokens/s and duration are taken over the successful runs that have the value:
  median (p50), p95 and the spread p25-p75 (linear interpolation between the sorted values,
  :func:`tui.stream.metrics.exact_quantile`, the store's percentiles too). Output tokens
  are the median over successes.
- Cost per run is the mean cost of the successful runs whose cost is known
  (:mod:`tui.session.prices`); unknown when none is.
- The ranking (:func:`rank`) orders the columns with a success by the median of one metric
  (``ttft`` and ``duration``: lower is better; ``tps``: higher is better), fastest first,
  each with its ratio to the best (``1.42x``: 1.42 times the best's TTFT, or the best's rate
  divided by 1.42). A column whose p25-p75 interval overlaps the interval of the first
  column of its group is *tied* with it and shares its place: the runs do not tell them
  apart. Columns without a successful run (or without the metric) come last, with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from statistics import fmean
from typing import TYPE_CHECKING, Literal, TypeAlias

from tui.session.prices import PriceSource, run_cost
from tui.store.stats_records import Outcome, outcome
from tui.stream.metrics import exact_quantile, time_per_output_token

if TYPE_CHECKING:
    from tui.store.records import RunSummary
    from tui.stream.accumulate import RunAccumulator

__all__ = [
    "METRICS",
    "ColumnStats",
    "Metric",
    "Rank",
    "Ranking",
    "RunFigures",
    "Spread",
    "column_stats",
    "rank",
]

Metric: TypeAlias = Literal["ttft", "tps", "duration"]
METRICS: tuple[Metric, ...] = ("ttft", "tps", "duration")
"""The metrics a ranking may order by (``ttft`` is the default)."""

HIGHER_IS_BETTER: frozenset[Metric] = frozenset({"tps"})


@dataclass(frozen=True, slots=True)
class RunFigures:
    """One finished run of a round, as the statistics read it."""

    run_id: str
    status: str
    finish_reason: str | None
    ttft_ms: float | None = None
    tokens_per_s: float | None = None
    duration_ms: float | None = None
    output_tokens: int | None = None
    tokens_estimated: bool = False
    """True when ``output_tokens`` is not the server's (no usage): an estimate or chunks."""
    tokens_source: str = "usage"
    """``usage``, ``estimated`` (a tokenizer) or ``chunks`` (see ``tui.stream.metrics``)."""
    tpot_ms: float | None = None
    """Time per output token (None when the tokens are chunks)."""
    input_tokens: int | None = None
    cached_tokens: int | None = None
    cost_usd: float | None = None
    """None when the price or the reported usage is unknown."""
    error: str | None = None
    """Why it failed (the error's sentence), for failed runs."""

    @property
    def outcome(self) -> Outcome | None:
        """``success``, ``failure`` or ``cancelled`` (None while running)."""
        return outcome(self.status, self.finish_reason)

    @classmethod
    def from_accumulator(cls, acc: RunAccumulator, price: PriceSource | None) -> RunFigures:
        """The figures of a live run (its accumulator after ``Finished``), priced."""
        m = acc.metrics()
        usage = acc.usage
        return cls(
            acc.run_id,
            acc.status or "running",
            acc.finish_reason,
            ttft_ms=m.ttft_ms,
            tokens_per_s=m.tokens_per_s,
            duration_ms=m.duration_ms,
            output_tokens=m.output_tokens,
            tokens_estimated=m.tokens_estimated,
            tokens_source=m.tokens_source,
            tpot_ms=m.tpot_ms,
            input_tokens=m.input_tokens,
            cached_tokens=usage.cached_tokens if usage is not None else None,
            error=acc.error.message if acc.error is not None else None,
        ).priced(price)

    @classmethod
    def from_stored(cls, run: RunSummary, price: PriceSource | None) -> RunFigures:
        """The figures of a stored run (``tui.store`` ``get_run`` / ``list_runs``), priced;
        the store keeps no token source: a count equal to the chunks is taken for chunks."""
        source = "usage"
        if run.tokens_estimated:
            source = "chunks" if run.output_tokens == run.chunks else "estimated"
        tpot = time_per_output_token(run.duration_ms, run.ttft_ms, run.output_tokens, source)
        return cls(
            run.run_id,
            run.status,
            run.finish_reason,
            ttft_ms=run.ttft_ms,
            tokens_per_s=run.tokens_per_s,
            duration_ms=run.duration_ms,
            output_tokens=run.output_tokens,
            tokens_estimated=run.tokens_estimated,
            tokens_source=source,
            tpot_ms=tpot,
            input_tokens=run.input_tokens,
            cached_tokens=run.cached_tokens,
            error=run.error.message if run.error is not None else None,
        ).priced(price)

    def priced(self, price: PriceSource | None) -> RunFigures:
        """These figures with the cost at ``price`` (None: unknown); a chunk count
        (``tokens_estimated``) is never priced."""
        cost = None
        if price is not None and not self.tokens_estimated:
            cost = run_cost(price, self.input_tokens, self.output_tokens, self.cached_tokens)
        return replace(self, cost_usd=cost)


@dataclass(frozen=True, slots=True)
class Spread:
    """Median, p95 and the p25-p75 spread of one metric over ``count`` values (None when
    ``count`` is 0)."""

    count: int = 0
    p25: float | None = None
    p50: float | None = None
    p75: float | None = None
    p95: float | None = None

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        """The spread of ``values`` (any order)."""
        ordered = sorted(values)
        q = exact_quantile
        return cls(
            len(ordered), q(ordered, 0.25), q(ordered, 0.5), q(ordered, 0.75), q(ordered, 0.95)
        )

    def overlaps(self, other: Spread) -> bool:
        """True when the two p25-p75 intervals share a point (both known)."""
        if None in (self.p25, self.p75, other.p25, other.p75):
            return False
        assert self.p25 is not None and self.p75 is not None
        assert other.p25 is not None and other.p75 is not None
        return self.p25 <= other.p75 and other.p25 <= self.p75


@dataclass(frozen=True, slots=True)
class ColumnStats:
    """One column's figures (see the module docstring for every definition)."""

    session: str
    model: str
    planned: int = 0
    """Runs the round plans for this column (N)."""
    runs: int = 0
    """Finished runs."""
    successes: int = 0
    failures: int = 0
    cancelled: int = 0
    ttft_ms: Spread = field(default_factory=Spread)
    tokens_per_s: Spread = field(default_factory=Spread)
    duration_ms: Spread = field(default_factory=Spread)
    tpot_ms: Spread = field(default_factory=Spread)
    """Time per output token (the runs whose tokens are counted, not chunks)."""
    output_tokens: float | None = None
    """Median output tokens of the successful runs."""
    tokens_estimated: bool = False
    """True when some success's output tokens are not the server's (estimated or chunks)."""
    tokens_chunks: bool = False
    """True when some success's output tokens are its chunk count (no usage, no tokenizer)."""
    cost_per_run_usd: float | None = None
    """Mean cost of the successful runs whose cost is known; None when none is."""
    cost_total_usd: float | None = None
    """Cost of every finished run whose cost is known (failed ones may have been billed)."""
    priced_runs: int = 0
    """Successful runs with a known cost (the mean's count)."""
    last_error: str | None = None
    """The newest failure's sentence."""

    def spread(self, metric: Metric) -> Spread:
        """The spread of ``metric``."""
        if metric == "ttft":
            return self.ttft_ms
        if metric == "tps":
            return self.tokens_per_s
        return self.duration_ms


def column_stats(
    session: str, model: str, runs: Sequence[RunFigures], planned: int = 0
) -> ColumnStats:
    """The figures of one column from its finished runs (running ones are left out)."""
    finished = [r for r in runs if r.outcome is not None]
    ok = [r for r in finished if r.outcome == "success"]
    failed = [r for r in finished if r.outcome == "failure"]
    costs = [r.cost_usd for r in ok if r.cost_usd is not None]
    billed = [r.cost_usd for r in finished if r.cost_usd is not None]
    tokens = [float(r.output_tokens) for r in ok if r.output_tokens is not None]
    return ColumnStats(
        session=session,
        model=model,
        planned=planned,
        runs=len(finished),
        successes=len(ok),
        failures=len(failed),
        cancelled=sum(1 for r in finished if r.outcome == "cancelled"),
        ttft_ms=Spread.of([r.ttft_ms for r in ok if r.ttft_ms is not None]),
        tokens_per_s=Spread.of([r.tokens_per_s for r in ok if r.tokens_per_s is not None]),
        duration_ms=Spread.of([r.duration_ms for r in ok if r.duration_ms is not None]),
        tpot_ms=Spread.of([r.tpot_ms for r in ok if r.tpot_ms is not None]),
        output_tokens=Spread.of(tokens).p50,
        tokens_estimated=any(r.tokens_estimated for r in ok),
        tokens_chunks=any(r.tokens_source == "chunks" for r in ok),
        cost_per_run_usd=fmean(costs) if costs else None,
        cost_total_usd=sum(billed) if billed else None,
        priced_runs=len(costs),
        last_error=next((r.error for r in reversed(failed) if r.error), None),
    )


@dataclass(frozen=True, slots=True)
class Rank:
    """One column's place in a ranking."""

    session: str
    place: int | None
    """1 for the best; tied columns share a place; None for a column that is not ranked."""
    value: float | None
    """The column's median of the ranking's metric."""
    ratio: float | None
    """How many times slower than the best (1.0 for the best; >= 1)."""
    tied_with: tuple[str, ...] = ()
    """The other columns of its tie (spreads that overlap), best first."""
    reason: str | None = None
    """Why the column is not ranked (no successful run, ...)."""


@dataclass(frozen=True, slots=True)
class Ranking:
    """The columns by one metric, fastest first, the unranked ones last."""

    metric: Metric
    ranks: tuple[Rank, ...]

    @property
    def ties(self) -> list[tuple[str, ...]]:
        """The groups of tied columns (two or more each), best group first."""
        groups: list[tuple[str, ...]] = []
        for r in self.ranks:
            if r.tied_with and r.place is not None:
                group = tuple(sorted({r.session, *r.tied_with}, key=self._order))
                if group not in groups:
                    groups.append(group)
        return groups

    @property
    def winner(self) -> str | None:
        """The column that is first and tied with none, if there is one."""
        first = self.ranks[0] if self.ranks else None
        if first is None or first.place != 1 or first.tied_with:
            return None
        return first.session

    def _order(self, session: str) -> int:
        return next(i for i, r in enumerate(self.ranks) if r.session == session)


def rank(columns: Sequence[ColumnStats], by: Metric = "ttft") -> Ranking:
    """The ranking of ``columns`` by ``by`` (see the module docstring)."""
    higher = by in HIGHER_IS_BETTER
    ranked: list[ColumnStats] = []
    unranked: list[Rank] = []
    for column in columns:
        median = column.spread(by).p50
        if median is None:
            unranked.append(Rank(column.session, None, None, None, reason=_why_unranked(column)))
        else:
            ranked.append(column)
    ranked.sort(key=lambda c: _median(c, by) * (-1.0 if higher else 1.0))
    best = _median(ranked[0], by) if ranked else None
    groups: dict[str, list[str]] = {}
    places: dict[str, int] = {}
    leader: ColumnStats | None = None
    for i, column in enumerate(ranked):
        if leader is not None and column.spread(by).overlaps(leader.spread(by)):
            groups[leader.session].append(column.session)
            places[column.session] = places[leader.session]
            groups[column.session] = groups[leader.session]
        else:
            leader = column
            groups[column.session] = [column.session]
            places[column.session] = i + 1
    ranks = [
        Rank(
            c.session,
            places[c.session],
            _median(c, by),
            _ratio(_median(c, by), best, higher),
            tuple(s for s in groups[c.session] if s != c.session),
        )
        for c in ranked
    ]
    return Ranking(by, (*ranks, *unranked))


def _median(column: ColumnStats, by: Metric) -> float:
    value = column.spread(by).p50
    assert value is not None
    return value


def _ratio(value: float, best: float | None, higher: bool) -> float | None:
    if best is None:
        return None
    if higher:
        return best / value if value > 0 else None
    if best <= 0:
        return 1.0 if value <= 0 else None
    return value / best


def _why_unranked(column: ColumnStats) -> str:
    if column.successes:
        return "no successful run measured it"
    if not column.runs:
        return "no run finished"
    parts = []
    if column.failures:
        parts.append(f"{column.failures} failed")
    if column.cancelled:
        parts.append(f"{column.cancelled} cancelled")
    return f"no successful run ({', '.join(parts)})"
