"""A session's conversation keeps what the dialogue said: completed and cut answers become
turns, failed and cancelled ones do not (a retry sends the prompt once), a refused
``previous_response_id`` is remembered, sending a turn again drops it and the later ones, a
restart begins a new conversation id; the branch keeps each turn's run, the plan its prompts."""

from __future__ import annotations

from tui.session.conversation import ConversationState
from tui.session.run import SessionRun
from tui.stream.accumulate import RunAccumulator
from tui.stream.events import Finished, Notice, ResponseInfo, RunError, TextDelta, ToolCallDelta
from tui.stream.runner import HISTORY_FALLBACK
from tui.vocab import Api, FinishReason, RunStatus


def turn(
    text: str,
    status: RunStatus = "completed",
    reason: FinishReason = "stop",
    *,
    api: Api = "responses",
    response_id: str | None = "resp_1",
    fallback: bool = False,
    tool: bool = False,
) -> RunAccumulator:
    acc = RunAccumulator("run", "s", api, "m", "p", clock=lambda: 0.0)
    acc.apply(ResponseInfo(0.0, response_id, "m"))
    if fallback:
        acc.apply(Notice(0.0, HISTORY_FALLBACK, "refused"))
    acc.apply(TextDelta(0.1, text))
    if tool:
        acc.apply(ToolCallDelta(0.2, 0, '{"city": "Seoul"}', name="weather", call_id="call_1"))
    error = RunError("dropped", "gone") if status == "failed" else None
    acc.apply(Finished(0.3, status, reason, None, error))
    return acc


def test_kept_turns_build_the_next_history() -> None:
    state = ConversationState("responses", mode="auto")
    assert state.history() is None and state.next_turn == 1
    assert state.finish("Name a river.", turn("The Han."))
    assert state.finish("Shorter.", turn("Han.", "incomplete", "length", response_id="resp_2"))
    history = state.history()
    assert history is not None
    assert [(t.prompt, t.answer) for t in history.turns] == [
        ("Name a river.", "The Han."),
        ("Shorter.", "Han."),
    ]
    assert history.previous_response_id == "resp_2" and state.next_turn == 3


def test_failed_and_cancelled_turns_are_not_kept() -> None:
    state = ConversationState("chat")
    state.finish("one", turn("a", api="chat"))
    assert not state.finish("two", turn("partial", "failed", "truncated", api="chat"))
    assert not state.finish("two", turn("", "cancelled", "cancelled", api="chat"))
    history = state.history()
    assert history is not None and [t.prompt for t in history.turns] == ["one"]


def test_a_refused_previous_response_id_is_remembered_for_the_session() -> None:
    state = ConversationState("responses", mode="auto")
    state.finish("one", turn("a"))
    state.finish("two", turn("b", fallback=True, response_id="resp_2"))
    assert state.mode == "client" and state.fell_back
    history = state.history()
    assert history is not None and history.previous_response_id is None


def test_a_fallback_that_did_not_carry_the_turn_teaches_nothing() -> None:
    # a 400 that the items did not cure either (context_length_exceeded) is no proof that
    # the server keeps nothing
    state = ConversationState("responses", mode="auto")
    state.finish("one", turn("a"))
    assert not state.finish("two", turn("", "failed", "error", fallback=True))
    assert state.mode == "auto" and not state.fell_back


def test_server_mode_is_never_changed_and_store_false_sends_no_id() -> None:
    state = ConversationState("responses", mode="server")
    state.finish("one", turn("a", fallback=True))
    assert state.mode == "server"
    kept_nothing = ConversationState("responses", mode="auto", server_keeps=False)
    kept_nothing.finish("one", turn("a"))
    history = kept_nothing.history()
    assert history is not None and history.previous_response_id is None


def test_seeded_messages_come_before_the_first_turn() -> None:
    seed = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    state = ConversationState("chat", messages=seed)
    history = state.history()
    assert history is not None and list(history.messages) == seed and not history.turns


def test_tool_calls_are_kept_with_their_turn() -> None:
    state = ConversationState("chat")
    state.finish("weather?", turn("", api="chat", tool=True, reason="tool_calls"))
    history = state.history()
    assert history is not None
    assert [(c.name, c.call_id) for c in history.answers_tools()] == [("weather", "call_1")]


def test_sending_a_turn_again_drops_it_and_restart_begins_a_new_conversation() -> None:
    state = ConversationState("chat")
    state.finish("one", turn("a", api="chat"))
    state.finish("two", turn("b", api="chat"))
    first_id = state.conversation_id
    state.keep_only(1)  # turn 2 again (an edit): a branch of the same turn
    assert [t.prompt for t in state.turns] == ["one"] and state.next_turn == 2
    assert state.conversation_id == first_id
    new_id = state.restart(["x", "y"])
    assert new_id != first_id and state.history() is None and state.next_turn == 1
    assert state.plan == ["x", "y"] and state.restart(conversation_id="given") == "given"


def session_run(number: int, prompt: str) -> SessionRun:
    acc = RunAccumulator(f"run{number}", "s", "chat", "m", prompt, clock=lambda: 0.0)
    return SessionRun(f"run{number}", prompt, acc, started_at=0.0, turn=number)


def test_the_branch_keeps_each_kept_turns_run_and_the_latest_try() -> None:
    state = ConversationState("chat", plan=["one", "two", "three"])
    first = session_run(1, "one")
    state.begin(first)
    state.finish("one", turn("a", api="chat"))
    failed = session_run(2, "two")
    state.begin(failed)
    assert not state.finish("two", turn("", "failed", "truncated", api="chat"))
    assert state.runs == [first, failed] and state.current_turn == 2
    retry = session_run(2, "two")
    state.begin(retry)  # the retry replaces the failed try in the branch
    assert state.runs == [first, retry] and state.next_turn == 2


def test_planning_a_turn_keeps_or_drops_the_rest_of_the_script() -> None:
    state = ConversationState("chat", plan=["one", "two", "three"])
    assert state.plan_turn(2, "TWO", keep_rest=True) == ["TWO", "three"]
    assert state.plan == ["one", "TWO", "three"]
    assert state.plan_turn(2, "2", keep_rest=False) == ["2"] and state.plan == ["one", "2"]
    # a follow-up past the plan is planned after the turns as they were sent
    state = ConversationState("chat", plan=["one"])
    state.begin(session_run(1, "one"))
    state.begin(session_run(2, "sent as a follow-up"))
    assert state.plan_turn(3, "three", keep_rest=False) == ["three"]
    assert state.plan == ["one", "sent as a follow-up", "three"]
