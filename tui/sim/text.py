"""Deterministic, realistic-looking model output, already cut into simulated tokens.

The same seed and prompt always give the same tokens. Answers are Markdown (headings, lists,
code blocks) with Korean passages, so every stream carries multi-byte UTF-8.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
import re
from collections.abc import Iterator, Mapping
from typing import Any

_TOPICS = (
    "streaming latency",
    "token throughput",
    "backpressure",
    "connection reuse",
    "retry budgets",
    "server-sent events",
    "request batching",
    "cache warmup",
)
_SUBJECTS = (
    "The server",
    "A streaming client",
    "The dashboard",
    "Each delta",
    "The first token",
    "A slow network",
    "The retry policy",
    "Every chunk",
    "The model",
    "A long prompt",
)
_VERBS = (
    "shows",
    "measures",
    "depends on",
    "hides",
    "reveals",
    "changes",
    "keeps track of",
    "reports",
    "slows down",
    "protects",
)
_OBJECTS = (
    "the time to first token",
    "the token rate",
    "the queue in front of the model",
    "the length of the prompt",
    "how long the connection stays open",
    "the gap between two chunks",
    "the usage at the end of the stream",
    "the work the server really did",
    "{topic}",
)
_TAILS = (
    "",
    "",
    " under load",
    " when the connection drops",
    " on a busy machine",
    " for long answers",
    " in most deployments",
    ", so measure it more than once",
    ", which is why tokens per second beats bytes per second",
)
_LABELS = ("Latency", "Throughput", "Retries", "Buffers", "Usage", "Timeouts", "Framing")
_HEADINGS = ("Why it matters", "A worked example", "Pitfalls", "In practice", "요약", "정리")
_KOREAN = (
    "스트리밍 응답은 첫 토큰까지의 시간과 초당 토큰 수로 측정합니다.",
    "연결이 끊어지면 마지막 이벤트 번호부터 다시 이어서 받을 수 있습니다.",
    "한국어 문장은 여러 바이트로 인코딩되므로 경계 처리를 확인하기에 좋습니다.",
    "서버가 보낸 사건은 빈 줄로 구분되고 각 줄은 필드 이름으로 시작합니다.",
    "지연 시간이 길어지면 대시보드가 경고 색으로 표시합니다.",
)
_CODE = (
    ("python", "async def read(stream):\n    async for chunk in stream:\n        yield chunk"),
    ("python", "total = sum(len(t) for t in tokens)\nrate = total / max(elapsed, 1e-9)"),
    ("bash", 'curl -N "$BASE_URL/chat/completions" \\\n  -H "Content-Type: application/json"'),
    ("json", '{"model": "sim", "stream": true, "input": "안녕하세요"}'),
)
_REASONING = (
    "**Planning the answer**\n\nThe user asks about {topic}. I should explain the main idea, "
    "give a short example and mention one pitfall. 먼저 핵심 개념을 정리하겠습니다.",
)
_TOKEN_RE = re.compile(r" ?[A-Za-z]+| ?\d{1,3}| ?[가-힣]{1,2}|\n+| +|.", re.DOTALL)


def seeded_rng(seed: int, *parts: str) -> random.Random:
    """A random generator determined by ``seed`` and the given strings."""
    digest = hashlib.blake2b(
        "\x1f".join((str(seed), *parts)).encode("utf-8"), digest_size=8
    ).digest()
    return random.Random(int.from_bytes(digest, "big"))


def tokenize(text: str) -> list[str]:
    """Cut text into simulated tokens (words with their leading space, 1-2 Hangul syllables,
    digits, newlines, punctuation); joining them gives the text back exactly."""
    return _TOKEN_RE.findall(text)


def _sentence(rng: random.Random, topic: str) -> str:
    obj = rng.choice(_OBJECTS).format(topic=topic)
    text = f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {obj}{rng.choice(_TAILS)}"
    return text + ("?" if rng.random() < 0.05 else ".")


def _title(prompt: str, topic: str) -> str:
    """The first line of the prompt, cut at a word boundary (or the topic)."""
    line = prompt.strip().splitlines()[0].strip() if prompt.strip() else ""
    if len(line) > 48:
        line = line[:48].rsplit(" ", 1)[0]
    return line.rstrip(" .,:;?!") or topic.capitalize()


def _blocks(rng: random.Random, prompt: str) -> Iterator[str]:
    """An endless supply of Markdown blocks about a topic chosen by the prompt."""
    topic = rng.choice(_TOPICS)
    yield f"## {_title(prompt, topic)}\n\n"
    section = 0
    while True:
        kind = rng.choice(("para", "para", "list", "code", "korean", "heading"))
        if section == 0:
            kind = "para"
        section += 1
        if kind == "para":
            yield " ".join(_sentence(rng, topic) for _ in range(rng.randint(2, 4))) + "\n\n"
        elif kind == "list":
            ordered = rng.random() < 0.5
            labels = rng.sample(_LABELS, k=rng.randint(3, 5))
            lines = [
                f"{f'{i + 1}.' if ordered else '-'} **{label}**: {_sentence(rng, topic)}"
                for i, label in enumerate(labels)
            ]
            yield "\n".join(lines) + "\n\n"
        elif kind == "code":
            lang, code = rng.choice(_CODE)
            yield f"```{lang}\n{code}\n```\n\n"
        elif kind == "korean":
            picks = rng.sample(_KOREAN, k=2)
            yield " ".join(picks) + "\n\n"
        else:
            yield f"### {rng.choice(_HEADINGS)}\n\n"


def answer_tokens(seed: int, prompt: str, count: int) -> list[str]:
    """Exactly ``count`` tokens of a Markdown answer to ``prompt`` (deterministic)."""
    return list(_answer_tokens(seed, prompt, count))


@functools.lru_cache(maxsize=8)
def _answer_tokens(seed: int, prompt: str, count: int) -> tuple[str, ...]:
    # Cached: benchmarks and dashboards repeat the same long requests.
    rng = seeded_rng(seed, "answer", prompt)
    tokens: list[str] = []
    blocks = _blocks(rng, prompt)
    # The first block after the title is Korean, so even short answers are multi-byte.
    tokens.extend(tokenize(next(blocks)))
    tokens.extend(tokenize(rng.choice(_KOREAN) + "\n\n"))
    while len(tokens) < count:
        tokens.extend(tokenize(next(blocks)))
    return tuple(tokens[:count])


def brief(text: str, limit: int = 40) -> str:
    """The first line of ``text``, at most ``limit`` characters (cut at a word when it can
    be, with an ellipsis)."""
    line = text.strip().splitlines()[0].strip() if text.strip() else ""
    if len(line) <= limit:
        return line
    cut = line[:limit]
    if " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" .,:;") + "…"


def turn_marker(turn: int, earlier: str) -> str:
    """The paragraph that opens an answer to turn 2 or later: which turn it answers and the
    user message before it, e.g. ``(turn 3) Following up on "now shorter".``"""
    said = brief(earlier)
    return f'(turn {turn}) Following up on "{said}".\n\n' if said else f"(turn {turn})\n\n"


def turn_answer_tokens(seed: int, prompt: str, count: int, turn: int, earlier: str) -> list[str]:
    """Exactly ``count`` tokens answering ``prompt`` on ``turn``: turn 1 is
    :func:`answer_tokens` itself; a later turn opens with :func:`turn_marker` (its tokens
    count towards ``count``)."""
    if turn <= 1:
        return answer_tokens(seed, prompt, count)
    head = tokenize(turn_marker(turn, earlier))
    if len(head) >= count:
        return head[:count]
    return head + answer_tokens(seed, prompt, count - len(head))


def reasoning_tokens(seed: int, prompt: str, count: int) -> list[str]:
    """``count`` tokens of a reasoning summary (deterministic)."""
    rng = seeded_rng(seed, "reasoning", prompt)
    topic = rng.choice(_TOPICS)
    text = rng.choice(_REASONING).format(topic=topic)
    tokens = tokenize(text)
    while len(tokens) < count:
        tokens.extend(tokenize(" " + _sentence(rng, topic)))
    return tokens[:count]


def _value_for(name: str, schema: Mapping[str, Any], rng: random.Random) -> Any:
    kind = schema.get("type")
    if schema.get("enum"):
        return schema["enum"][0]
    if kind in ("integer", "number"):
        return rng.randint(1, 30)
    if kind == "boolean":
        return True
    if kind == "array":
        return [_value_for(name, schema.get("items") or {"type": "string"}, rng)]
    if kind == "object":
        props = schema.get("properties") or {}
        return {k: _value_for(k, v if isinstance(v, dict) else {}, rng) for k, v in props.items()}
    if "city" in name or "location" in name:
        return rng.choice(("Seoul, 서울", "Busan, 부산", "Paris", "Lisbon"))
    if "unit" in name:
        return "celsius"
    return rng.choice(("streaming", "토큰", "latency", "서버"))


def tool_arguments(seed: int, prompt: str, parameters: Mapping[str, Any] | None) -> str:
    """Plausible JSON arguments for a function with the given JSON-schema ``parameters``."""
    rng = seeded_rng(seed, "tool", prompt)
    schema: Mapping[str, Any] = parameters or {}
    props = schema.get("properties") or {}
    args = {k: _value_for(k, v if isinstance(v, dict) else {}, rng) for k, v in props.items()}
    return json.dumps(args, ensure_ascii=False)


def argument_fragments(arguments: str, seed: int) -> list[str]:
    """Cut a JSON argument string into streamed fragments of 1-6 characters."""
    rng = random.Random(seed)
    out: list[str] = []
    i = 0
    while i < len(arguments):
        n = rng.randint(1, 6)
        out.append(arguments[i : i + n])
        i += n
    return out or [""]


def input_token_estimate(text: str) -> int:
    """A deterministic prompt token count (about four characters per token, plus framing)."""
    return max(1, (len(text) + 3) // 4) + 7
