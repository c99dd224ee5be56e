"""A compare round's report: its columns' figures, the ranking and every run's figures, from
a live :class:`~tui.session.rounds.Round` or from a round kept in the store. What every face
prints or draws (``tokentop compare``, the compare screen, a reopened round); pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tui.config.schema import Price
from tui.config.validate import build, check_table
from tui.session.prices import PriceSource
from tui.session.round_stats import ColumnStats, Metric, Ranking, RunFigures, column_stats, rank

if TYPE_CHECKING:
    from tui.session.rounds import Round
    from tui.store.records import RoundRecord, RunDetail

__all__ = ["ReportRun", "RoundReport", "stored_price_source"]


@dataclass(frozen=True, slots=True)
class ReportRun:
    """One finished run of the round: the ``index``-th (from 1) run of column ``session``."""

    session: str
    index: int
    figures: RunFigures


@dataclass(frozen=True, slots=True)
class RoundReport:
    """A round's figures at one moment (see :mod:`tui.session.round_stats`)."""

    round_id: str
    status: str
    """``running``, ``done``, ``cancelled``, ``failed`` or (stored) ``interrupted``."""
    prompt: str | None
    """The prompt every column got (None or empty: each session's own)."""
    count: int
    """Runs planned per column."""
    order: str
    by: Metric
    """The metric of :attr:`ranking`."""
    columns: tuple[ColumnStats, ...]
    ranking: Ranking
    runs: tuple[ReportRun, ...]
    """The finished runs, in the order they started."""
    started_at: float | None = None
    ended_at: float | None = None
    """Wall-clock times (Unix seconds)."""

    @property
    def every_column_succeeded(self) -> bool:
        """True when every column has at least one successful run (``tokentop compare``
        exits 0 then)."""
        return all(c.successes for c in self.columns)

    @classmethod
    def of_round(cls, round: Round, by: Metric = "ttft") -> RoundReport:
        """The report of a live round, from the runs finished so far."""
        columns = tuple(round.columns())
        runs = tuple(ReportRun(e.session, e.index, e.figures) for e in round.entries if e.figures)
        return cls(
            round.id,
            round.status,
            round.prompt,
            round.count,
            round.order,
            by,
            columns,
            rank(columns, by),
            runs,
            round.started_at,
            round.ended_at,
        )

    @classmethod
    def of_stored(
        cls, record: RoundRecord, details: Mapping[str, RunDetail], by: Metric = "ttft"
    ) -> RoundReport:
        """The report of a stored round; ``details`` are its stored runs by run id (a run
        missing from it, pruned since, is left out)."""
        runs: list[ReportRun] = []
        models: dict[str, str] = {}
        for member in record.runs:
            detail = details.get(member.run_id)
            if detail is None:
                continue
            models.setdefault(member.session, detail.model)
            source = stored_price_source(detail.model, detail.config)
            runs.append(
                ReportRun(member.session, member.index, RunFigures.from_stored(detail, source))
            )
        columns = tuple(
            column_stats(
                s,
                models.get(s, ""),
                [r.figures for r in sorted(runs, key=_index) if r.session == s],
                record.count,
            )
            for s in record.sessions
        )
        return cls(
            record.id,
            record.status,
            record.prompt or None,
            record.count,
            record.order,
            by,
            columns,
            rank(columns, by),
            tuple(runs),
            record.started_at,
            record.ended_at,
        )


def _index(run: ReportRun) -> int:
    return run.index


def stored_price_source(model: str, config: Mapping[str, Any]) -> PriceSource:
    """The price source of a stored run: its model and its session's stored settings
    (``base_url`` and ``price``, as :func:`tui.store.codec.config_snapshot` kept them; a
    ``price`` that is not a valid table is ignored; without a base URL no list price)."""
    base_url = config.get("base_url")
    return PriceSource(
        model, base_url if isinstance(base_url, str) else "", _price(config.get("price"))
    )


def _price(value: object) -> Price | None:
    """A stored ``price`` table, checked as the sessions file's is (None when it is not
    one)."""
    if not isinstance(value, Mapping):
        return None
    problems: list[str] = []
    given = {k: v for k, v in value.items() if v is not None}  # JSON null: the default
    checked = check_table(Price, given, lambda _path, message: problems.append(message))
    return None if problems else build(Price, checked)
