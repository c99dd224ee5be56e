"""The Starlette application: routes, fault selection per request, background responses."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import string
import time
from dataclasses import dataclass
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from tui.sim import faults as fx
from tui.sim.chat import chat_plan, chat_request
from tui.sim.errors import RequestError, context_exceeded, error_response
from tui.sim.plan import EventPlan, GenRequest, decide_content, hex_id, schedule
from tui.sim.registry import ResponseRegistry, StoredResponse
from tui.sim.responses import response_object, responses_plan, responses_request
from tui.sim.text import seeded_rng
from tui.sim.wire import Frames, ScheduledStream, StreamSpec, line_ending

_HTML_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)
_PAD_ALPHABET = string.ascii_letters + string.digits


def _request_headers(attempt: int) -> dict[str, str]:
    return {
        "x-request-id": "req_" + secrets.token_hex(16),
        "x-sim-attempt": str(attempt),
        "openai-processing-ms": "1",
        "cache-control": "no-cache",
    }


def _model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 1_767_225_600, "owned_by": "tokentop-sim"}


async def _http_error(request: Request, exc: Exception) -> Response:
    """Routing errors (unknown path, wrong method) as OpenAI-style JSON."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    return error_response(status, f"{request.method} {request.url.path}: {exc}")


async def _sleep_until(deadline: float, closing: asyncio.Event) -> None:
    """Sleep until loop time ``deadline`` (a stopping simulator ends it early)."""
    left = deadline - asyncio.get_running_loop().time()
    if left > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(closing.wait(), left)


Api = Literal["chat", "responses"]


@dataclass(frozen=True, slots=True)
class _Incoming:
    """A checked create request."""

    req: GenRequest
    preset: fx.Preset
    items: tuple[fx.FaultItem, ...]
    timing: fx.Timing
    key: str
    continues: bool
    """It carries ``Last-Event-ID``."""
    start: int
    """Index of the first event to send (after ``Last-Event-ID``)."""
    state: fx.ServerState
    previous: StoredResponse | None
    """The stored response a Responses request continues (``previous_response_id``)."""


class SimApp:
    """State of one simulator: seed, attempt counter and stored responses."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.attempts = fx.AttemptCounter()
        self.registry = ResponseRegistry()
        self.closing = asyncio.Event()
        self.created_by_key: dict[str, int] = {}

    def close_streams(self) -> None:
        """Cut every open stream (call on the server's loop, before stopping it)."""
        self.closing.set()

    def asgi(self) -> Starlette:
        """The Starlette application serving ``/v1``."""
        return Starlette(
            routes=[
                Route("/v1/chat/completions", self.chat, methods=["POST"]),
                Route("/v1/responses", self.responses, methods=["POST"]),
                Route("/v1/responses/{rid}", self.retrieve, methods=["GET"]),
                Route("/v1/responses/{rid}/cancel", self.cancel, methods=["POST"]),
                Route("/v1/models", self.models, methods=["GET"]),
                Route("/v1/models/{model}", self.model, methods=["GET"]),
            ],
            exception_handlers={404: _http_error, 405: _http_error},
        )

    async def models(self, request: Request) -> Response:
        """``GET /v1/models``: the presets."""
        return JSONResponse({"object": "list", "data": [_model(name) for name in fx.PRESETS]})

    async def model(self, request: Request) -> Response:
        """``GET /v1/models/{model}``: any name works (unknown names get the default preset)."""
        return JSONResponse(_model(request.path_params["model"]))

    async def chat(self, request: Request) -> Response:
        """``POST /v1/chat/completions``."""
        return await self._create(request, "chat")

    async def responses(self, request: Request) -> Response:
        """``POST /v1/responses``."""
        return await self._create(request, "responses")

    def _early_fault(self, faults: fx.FaultSet, headers: dict[str, str]) -> Response | None:
        status = faults.int_of("status")
        if status is not None:
            retry_after = faults.float_of("retry_after")
            if retry_after is not None:
                headers["retry-after"] = f"{retry_after:g}"
            retry_ms = faults.float_of("retry_after_ms")
            if retry_ms is not None:
                headers["retry-after-ms"] = f"{retry_ms:g}"
            return error_response(status, f"Simulated HTTP {status}.", headers=headers)
        if faults.has("html"):
            return HTMLResponse(_HTML_502, status_code=502, headers=headers)
        return None

    async def _parse(self, request: Request, api: Api) -> _Incoming | Response:
        """Read and check a create request (a 400 JSON error when it cannot be served)."""
        raw = await request.body()
        try:
            body = json.loads(raw)
        except ValueError:
            return error_response(400, "The request body is not valid JSON.")
        if not isinstance(body, dict):
            return error_response(400, "The request body must be a JSON object.")
        preset = fx.preset_for(str(body.get("model") or "sim"))
        h = request.headers
        last_id = h.get("last-event-id")
        try:
            items = preset.faults + fx.parse_fault_header(h.get("x-sim-fault"))
            timing = fx.parse_timing_header(h.get("x-sim-timing"), preset.timing)
            state = fx.server_state(items)
            previous: StoredResponse | None = None
            if api == "chat":
                req = chat_request(body)
            else:
                if state.ignores_previous:  # as if the field had not been sent
                    body = {k: v for k, v in body.items() if k != "previous_response_id"}
                previous = self.registry.previous(body, state)
                req = responses_request(body, None if previous is None else previous.history())
            if req.input_tokens > state.context:
                raise context_exceeded(api, state.context, req.input_tokens)
            start = 0 if last_id is None else int(last_id.strip()) + 1
        except RequestError as exc:
            return exc.response()
        except ValueError as exc:  # SimSpecError is a ValueError too
            return error_response(400, str(exc))
        key = fx.scenario_key(h.get("x-sim-key"), raw)
        if req.turn > 1:
            key += f"#t{req.turn}"
        return _Incoming(
            req, preset, items, timing, key, last_id is not None, start, state, previous
        )

    def _plan(
        self, api: Api, inc: _Incoming, faults: fx.FaultSet, seed: int
    ) -> tuple[EventPlan, int]:
        """The event plan of a create request, and its ``created`` timestamp."""
        req = inc.req
        content = decide_content(req, inc.timing, inc.preset, faults, seed)
        created = int(time.time())
        if faults.has("ids") or inc.continues:
            # A stream continued with Last-Event-ID regenerates the same bytes: the same ids
            # and the same timestamps as the attempt it continues.
            rng = seeded_rng(seed, "ids", inc.key, req.prompt)
            created = self.created_by_key.setdefault(inc.key, created)
            while len(self.created_by_key) > fx.AttemptCounter.DEFAULT_CAPACITY:
                del self.created_by_key[next(iter(self.created_by_key))]
        else:
            rng = seeded_rng(seed, "ids", secrets.token_hex(8))
        pad_rng = seeded_rng(seed, "pad", req.prompt)
        pad = ["".join(pad_rng.choices(_PAD_ALPHABET, k=pad_rng.randint(1, 14))) for _ in range(17)]
        if api == "chat":
            chat_id = "chatcmpl-" + hex_id(rng, 24)
            return chat_plan(
                req, content, faults, chat_id=chat_id, created=created, pad=pad
            ), created
        ids = ["rs_" + hex_id(rng, 40), "msg_" + hex_id(rng, 40), "fc_" + hex_id(rng, 40)]
        rid = "resp_" + hex_id(rng, 40)
        plan = responses_plan(req, content, faults, rid=rid, created_at=created, ids=ids, pad=pad)
        return plan, created

    async def _create(self, request: Request, api: Api) -> Response:
        t0 = asyncio.get_running_loop().time()  # the schedule counts from the request
        inc = await self._parse(request, api)
        if isinstance(inc, Response):
            return inc
        attempt = self.attempts.next(inc.key)
        faults = fx.active_faults(inc.items, attempt, inc.req.turn)
        headers = _request_headers(attempt)
        early = self._early_fault(faults, headers)
        if early is not None:
            return early
        req = inc.req
        seed = self.seed if inc.timing.seed is None else inc.timing.seed
        plan, created = self._plan(api, inc, faults, seed)
        dues = schedule(plan.kinds, inc.timing, seeded_rng(seed, "timing", req.prompt))
        stored: StoredResponse | None = None
        if api == "responses":
            bg = req.background
            keep = req.body.get("store") is not False
            stored = StoredResponse(
                req,
                str(plan.final["id"]),
                created,
                plan.names if bg else [],
                plan.datas if bg else [],
                dues if bg else [],
                t0,
                plan.final,
                inc.key,
                inc.items,
                seed,
                previous=inc.previous,
                chainable=keep and inc.state.stateless is None,
            )
            # store=false and a stateless server keep nothing (background responses are
            # kept for their resumes, but never continue a conversation).
            if bg or (keep and inc.state.stateless is None):
                self.registry.put(stored)
        if not req.stream or faults.has("not_sse"):
            if stored is not None and req.background and not faults.has("not_sse"):
                return JSONResponse(
                    response_object(req, stored.rid, created, "queued"), headers=headers
                )
            # A whole answer takes as long as its stream would have (the schedule's end).
            await _sleep_until(t0 + (dues[-1] if dues else 0.0), self.closing)
            return JSONResponse(plan.final, headers=headers)
        spec = self._spec(plan.names, plan.datas, dues, t0, inc.start, faults, seed)
        if stored is not None and req.background:
            spec.limit = stored.limit
        return ScheduledStream(spec, headers)

    def _spec(
        self,
        names: list[bytes | None],
        datas: list[bytes],
        dues: list[float],
        t0: float,
        start: int,
        faults: fx.FaultSet,
        seed: int,
    ) -> StreamSpec:
        keepalive = faults.float_of("keepalive")
        return StreamSpec(
            frames=Frames(names, datas, faults),
            dues=dues,
            t0=t0,
            start=start,
            drop_after=faults.int_of("drop"),
            stall_after=faults.int_of("stall"),
            keepalive=keepalive if keepalive else None,
            split=faults.has("split"),
            bom=faults.has("bom"),
            eol=line_ending(faults),
            seed=seed,
            closing=self.closing,
        )

    def _lookup(self, request: Request) -> StoredResponse | Response:
        rid = request.path_params["rid"]
        stored = self.registry.get(rid)
        if stored is None:
            return error_response(404, f"No response found with id '{rid}'.")
        return stored

    async def retrieve(self, request: Request) -> Response:
        """``GET /v1/responses/{id}`` (``?stream=true&starting_after=N`` replays events)."""
        stored = self._lookup(request)
        if isinstance(stored, Response):
            return stored
        now = asyncio.get_running_loop().time()
        q = request.query_params
        if q.get("stream", "false").lower() not in ("true", "1"):
            return JSONResponse(stored.current(now))
        if not stored.req.background:
            return error_response(
                400, "Only responses created with background=true can be streamed again."
            )
        try:
            after = int(q.get("starting_after", "-1"))
        except ValueError:
            return error_response(400, "starting_after must be an integer.")
        header = request.headers.get("x-sim-fault")
        try:
            items = fx.preset_for(stored.req.model).faults + fx.parse_fault_header(header)
        except fx.SimSpecError as exc:
            return error_response(400, str(exc))
        if header is None:
            items = stored.items
        attempt = self.attempts.next(stored.key)
        faults = fx.active_faults(items, attempt, stored.req.turn)
        headers = _request_headers(attempt)
        early = self._early_fault(faults, headers)
        if early is not None:
            return early
        # Content faults (error, fail, no_done, ...) are already in the stored event log.
        spec = self._spec(
            stored.names,
            stored.datas,
            stored.dues,
            stored.t0,
            max(0, after + 1),
            faults,
            stored.seed,
        )
        spec.limit = stored.limit
        return ScheduledStream(spec, headers)

    async def cancel(self, request: Request) -> Response:
        """``POST /v1/responses/{id}/cancel`` (idempotent)."""
        stored = self._lookup(request)
        if isinstance(stored, Response):
            return stored
        if not stored.req.background:
            return error_response(400, "Only background responses can be cancelled.")
        now = asyncio.get_running_loop().time()
        if stored.cancelled_at is None and stored.released(now) < len(stored.datas):
            stored.cancelled_at = stored.released(now)
        return JSONResponse(stored.current(now))
