"""``turn=N`` in ``X-Sim-Fault``: the other items hit only turn N of a conversation, so a test
can drop turn 2 alone (turn 1 and 3 run clean), on real HTTP; server-state items stay."""

from __future__ import annotations

from typing import Any

from tests.sim.wire_helpers import capture
from tui.sim import faults as fx


def test_turn_restricts_the_other_items_to_one_turn() -> None:
    items = fx.parse_fault_header("turn=2,ids,drop=12")
    assert fx.active_faults(items, 1, turn=1).names == frozenset()
    assert fx.active_faults(items, 1, turn=2).names == {"turn", "ids", "drop"}
    assert fx.active_faults(items, 2, turn=2).names == {"turn", "ids"}
    assert fx.active_faults(items, 1, turn=3).names == frozenset()
    # server state is the server's, whatever the turn
    assert fx.server_state(fx.parse_fault_header("turn=2,context=50")).context == 50


def _messages(turns: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for n in range(1, turns + 1):
        if n > 1:
            out.append({"role": "assistant", "content": f"answer {n - 1}"})
        out.append({"role": "user", "content": f"question {n}"})
    return out


def test_a_drop_in_turn_2_only(sim_url: str, sim_key: str) -> None:
    headers = {
        "X-Sim-Key": sim_key,
        "X-Sim-Timing": "ttft=0,tps=0,tokens=40",
        "X-Sim-Fault": "turn=2,drop=5",
    }

    def turn(n: int) -> Any:
        body = {"model": "sim", "messages": _messages(n), "stream": True}
        return capture(sim_url, "chat", headers=headers, body=body)

    assert turn(1).error is None
    assert turn(2).error is not None  # dropped after 5 events
    assert turn(2).error is None  # the second attempt of turn 2 runs clean
    assert turn(3).error is None
