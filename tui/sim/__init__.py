"""The built-in OpenAI-compatible streaming simulator (a real HTTP server: Starlette + uvicorn).

Public API::

    # tui.sim.process: the simulator of ``base_url = "sim"`` sessions, in a child process
    shared_simulator() -> str        # started once per process; dies with its parent
    SimulatorProcess(seed=0)         # .start() -> base URL, .stop(); a context manager
    # tui.sim.server: in this process (the tests' loopback server, ``tokentop sim``)
    sim = Simulator(seed=0)          # host="127.0.0.1", port=0 (a free port)
    base_url = sim.start()           # "http://127.0.0.1:PORT/v1"; uvicorn in a daemon thread
    sim.stop()                       # also a context manager: ``with Simulator() as sim:``
    serve(host, port)                # foreground, prints the base URL first (``tokentop sim``)

Routes: ``POST /v1/chat/completions``, ``POST /v1/responses``, ``GET /v1/responses/{id}``
(``?stream=true&starting_after=N`` for background responses), ``POST
/v1/responses/{id}/cancel``, ``GET /v1/models``, ``GET /v1/models/{id}``. Faults, timing,
server state (stateless gateways, context windows) and model presets: :mod:`tui.sim.faults`.

Conversations: chat ``messages`` (system, user, assistant with ``tool_calls``, ``tool``) and
Responses ``input`` items or ``previous_response_id`` (a chain of stored responses) carry the
history; an answer to turn 2 or later opens with ``(turn N) Following up on "<the user message
before>".`` and input tokens count the whole history.

Modules: ``faults`` (headers and presets), ``text`` (deterministic Markdown answers),
``plan`` (content decision and schedule), ``conversation`` (turns; the chat ``messages``
check), ``items`` (the Responses ``input`` check), ``errors`` (OpenAI's error shape),
``chat`` / ``responses`` (the two wire formats), ``registry`` (stored responses and their
chains), ``wire`` (SSE framing and the scheduled streaming response), ``app`` (Starlette
routes and background responses), ``server`` (threads, ``serve``), ``process`` (the child
process).
"""
