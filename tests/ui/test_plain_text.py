"""PlainText keeps its wrapped rows per width, updated on append, for every width it was
asked about (a scroll view alternates between two widths as its scrollbar comes and goes)."""

from __future__ import annotations

from textual.geometry import Size

from tui.ui.widgets.plain_text import WIDTHS_KEPT, PlainText, wrap_line

WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu"


def expected_rows(text: str, width: int) -> list[str]:
    return [row for line in text.split("\n") for row in wrap_line(line, width)]


def height(widget: PlainText, width: int) -> int:
    return widget.get_content_height(Size(width, 100), Size(width, 100), width)


def test_appends_update_the_rows_of_every_width_in_use() -> None:
    widget = PlainText(WORDS)
    assert height(widget, 20) == len(expected_rows(WORDS, 20))
    assert height(widget, 19) == len(expected_rows(WORDS, 19))
    text = WORDS
    for piece in (" nu xi", "\n\nomicron pi rho", " sigma tau upsilon phi chi psi omega\n", "x"):
        widget.append(piece)
        text += piece
        for width in (20, 19):
            assert widget._at(width).rows == expected_rows(text, width)
    assert widget.text == text


def test_flipping_between_two_widths_does_not_rewrap() -> None:
    widget = PlainText(WORDS * 200)
    height(widget, 40)
    height(widget, 39)
    rows_40 = widget._at(40).rows
    for _ in range(5):
        height(widget, 39)
        height(widget, 40)
    assert widget._at(40).rows is rows_40  # the same list: kept, not rebuilt
    for width in range(50, 50 + WIDTHS_KEPT + 2):  # other widths evict the oldest
        height(widget, width)
    assert len(widget._wrapped) == WIDTHS_KEPT
