"""The simulator in a child process: same answers as in-thread, stop, failures to start, the
shared instance, and no orphan after the parent is killed (each way of noticing it alone)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

import tui.sim.process
from tests.sim.wire_helpers import Api, answer_of, body_for, capture
from tui.sim.child import WATCH_ENV
from tui.sim.process import SimulatorProcess, shared_simulator, stop_shared_simulator
from tui.sim.server import Simulator

FAST = {"X-Sim-Timing": "ttft=0,tps=0,tokens=60"}
WAIT_S = 20.0
"""Bound of every wait below (generous: two shared cores, other test runs beside us)."""


def wait_until(check: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    """Poll ``check`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def is_gone(pid: int) -> bool:
    """The process has exited (a zombie nobody reaped yet counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):
        return True
    except OSError:  # no /proc: alive as far as we can tell
        return False


def refuses(port: int) -> bool:
    """Nothing listens on 127.0.0.1:``port``."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    return False


def port_of(base_url: str) -> int:
    """The port of ``http://127.0.0.1:PORT/v1``."""
    return int(base_url.rsplit(":", 1)[1].split("/", 1)[0])


@pytest.fixture
def child() -> Iterator[SimulatorProcess]:
    """A started simulator process with seed 7, stopped after the test."""
    with SimulatorProcess(seed=7) as sim:
        yield sim


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_same_answer_as_the_in_thread_simulator_with_the_same_seed(
    child: SimulatorProcess, api: Api
) -> None:
    body = body_for(api, "the same prompt for both")
    with Simulator(seed=7) as in_thread:
        expected = capture(in_thread.base_url, api, headers=FAST, body=body)
    got = capture(child.base_url, api, headers=FAST, body=body)
    assert got.status == expected.status == 200 and got.error is None
    text = answer_of(api, got.events())
    assert text and text == answer_of(api, expected.events())
    assert child.base_url.startswith("http://127.0.0.1:") and child.base_url.endswith("/v1")
    assert child.port == port_of(child.base_url) and child.running


def test_start_is_idempotent_and_stop_leaves_no_process_and_a_closed_port() -> None:
    sim = SimulatorProcess()
    url = sim.start()
    assert sim.start() == url
    pid = sim.pid
    assert pid is not None and pid != os.getpid()
    assert os.getsid(pid) == pid  # its own session: a Ctrl-C on the terminal reaches only us
    sim.stop()
    assert is_gone(pid) and refuses(port_of(url))
    assert sim.pid is None and not sim.running
    with pytest.raises(RuntimeError):
        _ = sim.base_url
    sim.stop()  # idempotent


def test_stop_cuts_an_open_stalled_stream_quickly(child: SimulatorProcess) -> None:
    with httpx.stream(
        "POST",
        child.base_url + "/responses",
        json={"model": "sim", "input": "x", "stream": True},
        headers={"X-Sim-Fault": "stall=2", "X-Sim-Timing": "ttft=0,tps=0"},
        timeout=WAIT_S,
    ) as resp:
        pieces = resp.iter_raw()
        assert next(pieces).startswith(b"event: ")
        proc = child._proc
        assert proc is not None
        child.stop()
        # The graceful shutdown cut it: the child exited by itself within the grace period
        # (tui.sim.process.STOP_GRACE_S) and was not SIGKILLed.
        assert proc.returncode is not None and proc.returncode != -signal.SIGKILL
        with pytest.raises(httpx.RemoteProtocolError):
            for _ in pieces:
                pass


def test_a_child_started_from_a_thread_that_ends_keeps_serving() -> None:
    # PR_SET_PDEATHSIG fires when the forking *thread* ends: the spawner thread forks.
    sim = SimulatorProcess()
    thread = threading.Thread(target=sim.start)
    thread.start()
    thread.join(WAIT_S)
    try:
        assert sim.running
        until = time.monotonic() + 1.0  # long enough for a SIGTERM'd child to be gone
        while time.monotonic() < until:
            assert httpx.get(sim.base_url + "/models", timeout=WAIT_S).status_code == 200
        assert sim.running
    finally:
        sim.stop()


def test_a_taken_port_fails_at_once_with_the_reason() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(RuntimeError) as info:
            SimulatorProcess(port=port).start()
    assert time.monotonic() - started < WAIT_S
    assert str(info.value) == (
        f"cannot listen on 127.0.0.1:{port}: Address already in use"
        " (the simulator process exited with code 1)"
    )


class _Impostor(SimulatorProcess):
    """A 'simulator' whose child runs ``code`` instead."""

    def __init__(self, code: str, start_timeout: float) -> None:
        super().__init__(start_timeout=start_timeout)
        self.code = code

    def _command(self) -> list[str]:
        return [sys.executable, "-c", self.code]


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (
            "import sys, time; print('warming up', file=sys.stderr, flush=True); time.sleep(60)",
            "the simulator process did not report its address within 3 s: warming up",
        ),
        ("raise SystemExit('no uvicorn here')", "no uvicorn here (the simulator process exited"),
        ("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", "was killed by SIGKILL"),
        ("print('hello')", "the simulator process printed 'hello' instead of its address"),
    ],
    ids=["silent", "exits", "killed", "babbles"],
)
def test_a_child_that_does_not_start_gives_its_reason_not_a_hang(code: str, message: str) -> None:
    # The silent one is given 3 s to say "warming up" (it does in milliseconds); the others
    # end by themselves, so their bound is only there to fail instead of hanging.
    start_timeout = 3.0 if "within" in message else WAIT_S
    sim = _Impostor(code, start_timeout=start_timeout)
    started = time.monotonic()
    with pytest.raises(RuntimeError, match=re.escape(message)):
        sim.start()
    assert time.monotonic() - started < start_timeout + WAIT_S
    assert not sim.running and sim.pid is None


def test_shared_simulator_is_one_child_across_threads_and_replaced_when_it_dies() -> None:
    stop_shared_simulator()
    urls: list[str] = []
    lock = threading.Lock()

    def get() -> None:
        url = shared_simulator()
        with lock:
            urls.append(url)

    threads = [threading.Thread(target=get) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT_S)
    try:
        assert len(urls) == 6 and len(set(urls)) == 1
        assert httpx.get(urls[0] + "/models", timeout=WAIT_S).status_code == 200
        shared = tui.sim.process._shared
        assert shared is not None and shared.pid is not None
        os.kill(shared.pid, signal.SIGKILL)
        wait_until(lambda: not shared.running, "the shared child to die")
        again = shared_simulator()
        assert httpx.get(again + "/models", timeout=WAIT_S).status_code == 200
        assert tui.sim.process._shared is not shared
    finally:
        stop_shared_simulator()
    assert refuses(port_of(urls[0]))


_PARENT = textwrap.dedent(
    """
    import sys
    import tui.sim.process as process

    url = process.shared_simulator()
    print(process._shared.pid, url, flush=True)
    sys.stdin.read()  # until killed
    """
)


@pytest.mark.parametrize("watch", ["", "pipe", "pdeathsig"], ids=["both", "pipe", "pdeathsig"])
def test_no_orphan_after_the_parent_is_killed(watch: str) -> None:
    if watch == "pdeathsig" and not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux only")
    env = {k: v for k, v in os.environ.items() if k != WATCH_ENV}
    if watch:
        env[WATCH_ENV] = watch
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    pid = 0
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline()
        assert line, parent.communicate(timeout=WAIT_S)[1]
        pid_text, url = line.split()
        pid = int(pid_text)
        assert httpx.get(url + "/models", timeout=WAIT_S).status_code == 200
        parent.kill()
        parent.wait(WAIT_S)
        wait_until(lambda: is_gone(pid), "the orphaned simulator to exit")
        assert refuses(port_of(url))
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(WAIT_S)
        if pid and not is_gone(pid):
            os.kill(pid, signal.SIGKILL)
        parent.communicate(timeout=WAIT_S)


def test_the_child_says_nothing_on_the_parents_terminal() -> None:
    code = textwrap.dedent(
        """
        import httpx
        from tui.sim.process import shared_simulator

        url = shared_simulator()
        body = {"model": "sim", "stream": True, "messages": [{"role": "user", "content": "x"}]}
        for fault in ("drop=1", "status=500", "bad_json=2"):
            try:
                with httpx.stream(
                    "POST",
                    url + "/chat/completions",
                    json=body,
                    headers={"X-Sim-Fault": fault, "X-Sim-Timing": "ttft=0,tps=0"},
                    timeout=20,
                ) as resp:
                    for _ in resp.iter_raw():
                        pass
            except httpx.HTTPError:
                pass
        print("done")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=WAIT_S * 2
    )
    assert (out.returncode, out.stdout, out.stderr) == (0, "done\n", "")


def test_the_parent_side_imports_no_server_code() -> None:
    code = (
        "import sys, json, tui.sim.process;"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules}"
        " & {'uvicorn', 'starlette', 'httptools', 'textual', 'rich'})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=WAIT_S
    )
    assert out.stdout.strip() == "[]"
