"""Fault and timing selection for the simulator.

A request picks its behaviour with headers (any API, any combination):

``X-Sim-Fault``: comma-separated items ``name[=value][*K]``. ``*K`` means "only on the first K
attempts" of that scenario; without it, connection faults (``drop``, ``stall``, ``status``,
``html``, ``not_sse``) apply to the first attempt only and framing quirks apply always.
Attempts are counted per scenario key: the ``X-Sim-Key`` header if given, else a hash of the
request body (a resume ``GET`` counts against the key of the response it resumes).

=====================  ==========================================================
item                   effect
=====================  ==========================================================
``drop=N``             close the socket abruptly after N events (no terminal chunk)
``stall=N``            after N events send nothing more (connection stays open)
``keepalive=S``        send ``: keep-alive`` comments every S seconds (also while stalled)
``status=CODE``        answer HTTP CODE with a JSON error body (nested ``error`` shape)
``retry_after=S``      with ``status``: ``Retry-After: S`` header (seconds)
``retry_after_ms=MS``  with ``status``: ``retry-after-ms: MS`` header
``html``               answer 502 with an HTML page (``text/html``)
``not_sse``            answer 200 with ``application/json`` instead of an event stream
``bad_json=N``         the data of event N (1-based) is malformed JSON
``error=N``            in-band error after N events (chat: ``data: {"error": {...}}``;
                       responses: an ``error`` event)
``error_shape=flat``   responses ``error`` event in the documented flat shape (default nested)
``fail=N``             responses: ``response.failed`` after N events (chat: same as error)
``bom``                a leading UTF-8 BOM
``crlf`` / ``cr``      CRLF / CR-only line endings
``comments``           comment lines between events
``ids``                ``id:`` on every event, keep-alive comments in between; POST with
                       ``Last-Event-ID`` continues after that event
``multiline``          data JSON spread over several ``data:`` lines
``split``              every write split at arbitrary byte positions (inside UTF-8
                       characters and CRLFs), pieces flushed separately
``no_done``            end cleanly with no ``[DONE]`` and no terminal event
``content_filter``     end with ``content_filter`` (chat) / incomplete content_filter
``empty_stop``         ``stop`` with no content at all
=====================  ==========================================================

``X-Sim-Timing``: ``ttft=S,tps=R,jitter=J,tokens=N,seed=K`` (time to first token in seconds,
tokens per second, relative jitter 0..1, output length in tokens, seed). ``tps=0`` sends as
fast as possible. Defaults come from the model preset.

Model presets (the model name; unknown ``sim*`` names get the default preset):
``sim`` / ``sim-fast`` / ``sim-slow`` / ``sim-flaky`` (drops once) / ``sim-429`` /
``sim-broken`` (502 HTML) / ``sim-filter`` / ``sim-tools`` / ``sim-think`` (reasoning).
"""
