"""OverviewGrid: a cell write renders that cell again, not the table, and the table shows
exactly what Textual's DataTable shows for the same cells (this also guards the private
DataTable render path the grid hooks into)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import App, ComposeResult
from textual.widgets import DataTable

from tests.ui.conftest import wait_until
from tui.ui.widgets.overview_grid import OverviewGrid

ROWS = 20
COLUMNS = ("name", "rate", "out", "state")


class GridApp(App[None]):
    def compose(self) -> ComposeResult:
        yield OverviewGrid(id="grid", cursor_type="row", zebra_stripes=True)
        yield DataTable(id="plain", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        for table in self.query(DataTable):
            table.styles.height = ROWS + 2
            for key in COLUMNS:
                table.add_column(key, key=key, width=8)
            for i in range(ROWS):
                table.add_row(*[Text(f"{key}{i}") for key in COLUMNS], key=f"r{i}")


def lines(table: DataTable[Any]) -> list[str]:
    return [table.render_line(y).text for y in range(ROWS + 1)]


async def test_a_write_renders_its_cell_and_the_table_matches_datatable() -> None:
    app = GridApp()
    async with app.run_test(size=(60, 50)) as pilot:
        grid = app.query_one(OverviewGrid)
        plain: DataTable[object] = app.query_one("#plain", DataTable)
        await wait_until(pilot, lambda: grid.cells_rendered >= ROWS * len(COLUMNS), what="paint")
        await pilot.pause()
        assert lines(grid) == lines(plain)
        before = grid.cells_rendered
        for table in (grid, plain):
            table.update_cell("r3", "rate", Text("12.5", justify="right"))
        grid.write_cells([("r7", "out", "1,024"), ("r7", "state", Text("done", style="bold"))])
        plain.update_cell("r7", "out", "1,024")
        plain.update_cell("r7", "state", Text("done", style="bold"))
        await pilot.pause()
        await pilot.pause()
        assert lines(grid) == lines(plain)
        assert "12.5" in lines(grid)[4] and "1,024" in lines(grid)[8]
        # the three written cells (each in the contexts painted), not the 80 of the table
        assert 3 <= grid.cells_rendered - before < 12
        assert str(grid.get_cell("r7", "out")) == "1,024"
        # moving the cursor or sorting still renders correctly
        for table in (grid, plain):
            table.move_cursor(row=5)
            table.sort("name", key=str, reverse=True)
        await pilot.pause()
        await pilot.pause()
        assert lines(grid) == lines(plain)
