"""Pure parts of the simulator: header parsing, text, schedule, framing helpers."""

from __future__ import annotations

import itertools
import json
import random
import statistics

import pytest

from tui.sim import faults as fx
from tui.sim import text
from tui.sim.plan import IMMEDIATE, STRUCTURAL, TOKEN, schedule
from tui.sim.wire import Frames, frame_events, split_points, spread_data


def test_fault_header_defaults_and_star_k() -> None:
    items = fx.parse_fault_header("drop=5, bom ,status=429*3,retry_after=1.5,error_shape=flat")
    by_name = {i.name: i for i in items}
    assert by_name["drop"] == fx.FaultItem("drop", 5, 1)  # connection fault: first attempt
    assert by_name["bom"].max_attempts == fx.ALWAYS  # framing quirk: always
    assert by_name["status"] == fx.FaultItem("status", 429, 3)
    assert by_name["retry_after"].value == 1.5
    assert by_name["error_shape"].value == "flat"
    assert fx.active_faults(items, 1).names == {
        "drop",
        "bom",
        "status",
        "retry_after",
        "error_shape",
    }
    assert fx.active_faults(items, 2).names == {"bom", "status", "retry_after", "error_shape"}
    assert fx.active_faults(items, 4).names == {"bom", "retry_after", "error_shape"}
    assert fx.parse_fault_header(None) == () == fx.parse_fault_header("  ")


@pytest.mark.parametrize(
    "header", ["nope", "drop", "bom=1", "drop=x", "drop=-1", "error_shape=odd", "stall=1*z"]
)
def test_bad_fault_headers(header: str) -> None:
    with pytest.raises(fx.SimSpecError):
        fx.parse_fault_header(header)


def test_timing_header_and_presets() -> None:
    base = fx.preset_for("sim-slow").timing
    timing = fx.parse_timing_header("ttft=0.2, tps=50,jitter=3,tokens=12,seed=9", base)
    assert timing == fx.Timing(ttft=0.2, tps=50.0, jitter=1.0, tokens=12, seed=9)
    assert fx.parse_timing_header("", base) is base
    assert fx.preset_for("unknown-model") is fx.DEFAULT_PRESET
    assert fx.preset_for("SIM-FLAKY").faults[0].name == "drop"
    with pytest.raises(fx.SimSpecError):
        fx.parse_timing_header("speed=3", base)


def test_attempt_counter_and_keys() -> None:
    counter = fx.AttemptCounter(capacity=2)
    assert [counter.next("a"), counter.next("a"), counter.next("b")] == [1, 2, 1]
    counter.next("c")  # evicts "a"
    assert counter.next("a") == 1
    assert fx.scenario_key("k", b"x") != fx.scenario_key(None, b"x")
    assert fx.scenario_key(None, b"x") == fx.scenario_key(None, b"x")


def test_answer_tokens_are_deterministic_markdown_with_korean() -> None:
    a = text.answer_tokens(0, "prompt", 600)
    assert a == text.answer_tokens(0, "prompt", 600)
    assert a != text.answer_tokens(1, "prompt", 600)
    assert len(a) == 600 and all(a)
    joined = "".join(a)
    assert joined.startswith("## prompt\n\n")
    assert any("가" <= ch <= "힣" for ch in joined)
    assert "```" in joined or "\n- " in joined or "\n1. " in joined
    assert "".join(text.tokenize(joined)) == joined
    assert text.tokenize("## 제목\n\n- a, b") == ["#", "#", " 제목", "\n\n", "-", " a", ",", " b"]


def test_tool_arguments_follow_schema() -> None:
    schema = {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "days": {"type": "integer"},
            "unit": {"type": "string", "enum": ["f", "c"]},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
    }
    args = json.loads(text.tool_arguments(0, "p", schema))
    assert set(args) == {"city", "days", "unit", "tags"}
    assert isinstance(args["days"], int) and args["unit"] == "f"
    frags = text.argument_fragments(json.dumps(args), 1)
    assert "".join(frags) == json.dumps(args) and len(frags) > 3


def test_schedule_ttft_rate_and_riders() -> None:
    kinds = [IMMEDIATE, IMMEDIATE, STRUCTURAL] + [TOKEN] * 101 + [STRUCTURAL, STRUCTURAL]
    timing = fx.Timing(ttft=0.5, tps=100, jitter=0.0)
    dues = schedule(kinds, timing, random.Random(0))
    assert dues[:3] == [0.0, 0.0, 0.5]
    assert dues[3] == 0.5 and dues[103] == pytest.approx(1.5)
    assert dues[-2:] == [dues[103], dues[103]]
    jittered = schedule(kinds, fx.Timing(ttft=0.0, tps=100, jitter=0.5), random.Random(1))
    gaps = [b - a for a, b in itertools.pairwise(jittered[3:104])]
    assert min(gaps) < 0.008 and max(gaps) > 0.012
    assert statistics.mean(gaps) == pytest.approx(0.01, rel=0.1)
    assert dues == sorted(dues) and jittered == sorted(jittered)
    flat = schedule(kinds, fx.Timing(ttft=0.1, tps=0), random.Random(0))
    assert set(flat[2:]) == {0.1}


def testspread_data_only_breaks_outside_strings() -> None:
    obj = {"a": 'x,"y",z', "b": [1, 2, 3], "c": {"d": '\\",', "e": "한국어,"}, "f": 1}
    data = json.dumps(obj, ensure_ascii=False).replace(", ", ",").encode()
    spread = spread_data(data)
    assert b"\ndata: " in spread
    assert json.loads(spread.replace(b"\ndata: ", b"\n")) == obj


def test_frame_events_quirks() -> None:
    names: list[bytes | None] = [b"x", b"y"]
    datas = [b'{"n":1}', b'{"n":2}']
    plain = frame_events(names, datas, fx.FaultSet())
    assert plain == [b'event: x\ndata: {"n":1}\n\n', b'event: y\ndata: {"n":2}\n\n']
    faults = fx.active_faults(fx.parse_fault_header("ids,crlf,bad_json=2"), 1)
    framed = frame_events(names, datas, faults)
    assert framed[0] == b'id: 0\r\nevent: x\r\ndata: {"n":1}\r\n\r\n'
    assert framed[1].startswith(b": keep-alive\r\n\r\nid: 1\r\n")
    bad = framed[1].split(b"data: ")[1].split(b"\r\n")[0]
    with pytest.raises(json.JSONDecodeError):
        json.loads(bad)


def test_split_points_cut_inside_characters_and_crlf() -> None:
    body = "data: 한국\r\n\r\n".encode()
    cuts = split_points(body, random.Random(0))
    assert cuts == sorted(set(cuts)) and all(0 < c < len(body) for c in cuts)
    assert any(0x80 <= body[c] < 0xC0 for c in cuts)
    assert body.index(b"\r\n") + 1 in cuts
    assert split_points(b"x", random.Random(0)) == []


def test_the_spec_docstring_names_every_fault_and_preset() -> None:
    doc = fx.__doc__ or ""
    for name in sorted(fx.ALL_FAULTS):
        assert f"``{name}" in doc, name
    for preset in fx.PRESETS:
        assert f"``{preset}``" in doc, preset


@pytest.mark.parametrize("named", [True, False])
def test_lazy_frames_equal_framed_events(named: bool) -> None:
    datas = [b'{"n":%d,"t":"\xed\x95\x9c"}' % i for i in range(5000)]
    names: list[bytes | None] = [b"response.output_text.delta" if named else None] * len(datas)
    framed = frame_events(names, datas, fx.FaultSet())
    lazy = Frames(names, datas, fx.FaultSet())
    assert len(lazy) == 5000
    for start, stop in [(0, 1), (0, 2048), (2048, 5000), (4999, 5000), (10, 10)]:
        assert lazy.chunk(start, stop) == b"".join(framed[start:stop])
    quirky = fx.active_faults(fx.parse_fault_header("crlf,ids"), 1)
    assert Frames(names, datas, quirky).chunk(0, 3) == b"".join(
        frame_events(names, datas, quirky)[:3]
    )
