"""``python -m bench.sdk_loop SESSIONS_FILE``: every session of a sessions file streamed at
once with the openai SDK's async streaming loop (``chat.completions.create(stream=True)`` or
``responses.create(stream=True)``, the text deltas joined), as a plain SDK user writes it.
Prints one JSON line: the text deltas received and the characters. The reference of the
``cpu_per_token`` part (its CPU is read by the parent with ``wait4``).
"""

from __future__ import annotations

import asyncio
import json
import sys
import tomllib
from pathlib import Path
from typing import Any

import openai


async def _one(client: openai.AsyncOpenAI, session: dict[str, Any]) -> tuple[int, int]:
    headers = session.get("headers", {})
    parts: list[str] = []
    if session.get("api") == "chat":
        chat = await client.chat.completions.create(
            model=session["model"],
            messages=[{"role": "user", "content": session["prompt"]}],
            stream=True,
            extra_headers=headers,
        )
        async for chunk in chat:
            if chunk.choices and chunk.choices[0].delta.content:
                parts.append(chunk.choices[0].delta.content)
    else:
        events = await client.responses.create(
            model=session["model"], input=session["prompt"], stream=True, extra_headers=headers
        )
        async for event in events:
            if event.type == "response.output_text.delta":
                parts.append(event.delta)
    return len(parts), len("".join(parts))


async def _main(sessions: list[dict[str, Any]]) -> None:
    base_url = sessions[0]["base_url"]
    async with openai.AsyncOpenAI(base_url=base_url, api_key="sk-bench", max_retries=0) as client:
        counts = await asyncio.gather(*(_one(client, s) for s in sessions))
    print(json.dumps({"deltas": sum(n for n, _ in counts), "chars": sum(c for _, c in counts)}))


if __name__ == "__main__":
    asyncio.run(_main(tomllib.loads(Path(sys.argv[1]).read_text())["sessions"]))
