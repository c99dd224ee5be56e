"""The round table narrowed to a screen's width: empty columns first, then the p95s, the
price, TPOT, the model...; the place, session, successes, the ranked metric and the ratio
always stay, and the columns left out are named."""

from __future__ import annotations

from tui.session.round_table import HEADER, fit_cells
from tui.vocab import MISSING


def cells() -> list[list[str]]:
    rows = [list(HEADER)]
    for place, name in ((1, "quick · chat"), (2, "reasoning")):
        rows.append(
            [
                str(place),
                name,
                "sim-fast",
                "3/3",
                "64 (60–70)",
                "80",
                "399.3 (390.0–400.1)",
                "401.0",
                "2.5 (2.4–2.6)",
                "1,064 (1,000–1,100)",
                "1,200",
                "400",
                MISSING,
                f"{place}.00x",
            ]
        )
    return rows


def width(table: list[list[str]]) -> int:
    return sum(max(len(row[i]) for row in table) + 2 for i in range(len(table[0])))


def test_a_wide_screen_keeps_every_column_but_an_empty_one() -> None:
    table, shown, dropped = fit_cells(cells(), 400, by="ttft")
    assert dropped == ["$/run"]
    assert shown == [i for i in range(len(HEADER)) if i != 12]
    assert table[1][1] == "quick · chat" and len(table[0]) == len(HEADER) - 1


def test_a_narrow_screen_gives_up_the_p95s_first_and_keeps_the_ranked_metric() -> None:
    full = width(fit_cells(cells(), 400, by="ttft")[0])
    table, shown, dropped = fit_cells(cells(), full - 10, by="ttft")
    assert dropped[:1] == ["duration p95"] or "duration p95" in dropped
    assert width(table) <= full - 10
    for narrow in (120, 80, 60, 20):
        for by, column in (("ttft", 4), ("tps", 6), ("duration", 9)):
            table, shown, dropped = fit_cells(cells(), narrow, by=by)  # type: ignore[arg-type]
            assert {0, 1, 3, 13, column} <= set(shown)
            assert len(table[0]) == len(shown) and all(len(r) == len(shown) for r in table)
            assert len(dropped) + len(shown) == len(HEADER)
            if narrow >= 80:
                assert width(table) <= narrow
    _, shown, dropped = fit_cells(cells(), 80, by="tps")
    assert 6 in shown and "tok/s" not in dropped and "ttft p95" in dropped


def test_a_priced_column_stays_while_it_fits() -> None:
    priced = cells()
    for row in priced[1:]:
        row[12] = "$0.0045"
    _, shown, dropped = fit_cells(priced, 400, by="ttft")
    assert dropped == [] and 12 in shown
