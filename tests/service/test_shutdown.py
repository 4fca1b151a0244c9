"""Shutdown on SIGTERM is prompt: requests waiting for a job answer 503 at once (the job is kept), and the process
does not wait for a running batch longer than GLMIMAGE_SHUTDOWN_TIMEOUT_S."""

import signal
import threading
import time

import httpx
from benchmarks.load_test import ServerProcess, free_port

from glmimage.service.app import create_app, shutdown_aware_server
from glmimage.service.settings import Settings
from tests.service.service_helpers import FAST

# Long jobs allowed, so that waiting for one could not pass for a prompt shutdown.
LONG_JOBS = """
name: long-jobs
parameters:
  steps:      {settable: true, min: 1, max: 200, default: null}
  guidance:   {settable: true, min: 1.0, max: 5.0, default: 1.5}
  size:       {settable: true, min: 64, max: 512, default: null}
  seed:       {settable: true, min: 0, max: 4294967295, default: null}
  num_images: {settable: true, min: 1, max: 4, default: 1}
"""


def test_waiting_requests_answer_503_when_the_server_is_told_to_stop(engine, tmp_path):
    app = create_app(Settings(model="tiny", data_dir=tmp_path, ocr=False, log_json=False), engine=engine,
                     text_checker=None)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = shutdown_aware_server(app, host="127.0.0.1", port=port)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    services = app.state.services
    services.local_worker.pause()  # the job stays queued: the request would wait sync_timeout_s (600 s)
    headers = {"Authorization": f"Bearer {services.bootstrap_key}"}
    answers = []
    waiting = threading.Thread(target=lambda: answers.append(
        httpx.post(f"{url}/v1/images/generations", json={"prompt": "a boat", **FAST}, headers=headers, timeout=60)))
    waiting.start()
    while not services.events._waiters:
        assert time.monotonic() < deadline, "the request never started waiting"
        time.sleep(0.02)

    started = time.monotonic()
    server.handle_exit(signal.SIGTERM, None)  # what uvicorn's signal handler calls
    waiting.join(10)
    thread.join(15)
    assert not thread.is_alive() and time.monotonic() - started < 10
    response = answers[0]
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == "shutting_down" and "poll GET /v1/jobs/" in error["message"]
    assert response.headers["Retry-After"]
    with services.db.sessions() as session:
        from glmimage.service.tables import Generation

        assert [g.status for g in session.query(Generation)] == ["queued"]  # kept for the next start


def test_sigterm_during_a_long_job_exits_within_the_shutdown_timeout(tmp_path):
    (tmp_path / "policy.yaml").write_text(LONG_JOBS)
    server = ServerProcess(tmp_path / "server", env={"OMP_NUM_THREADS": "1", "GLMIMAGE_BATCH_WAIT_S": "0",
                                                     "GLMIMAGE_SHUTDOWN_TIMEOUT_S": "3",
                                                     "GLMIMAGE_PARAMETER_POLICY": str(tmp_path / "policy.yaml")})
    headers = {"Authorization": f"Bearer {server.create_key()}"}
    url = server.start()
    try:
        slow = {"prompt": "a long poster", "size": "512x512", "steps": 200, "n": 4}  # half a minute or more on a CPU
        answers = []
        waiting = threading.Thread(target=lambda: answers.append(
            httpx.post(f"{url}/v1/images/generations", json=slow, headers=headers, timeout=300)))
        waiting.start()
        deadline = time.monotonic() + 60
        while httpx.get(f"{url}/v1/generations?status=running", headers=headers).json()["total"] == 0:
            assert time.monotonic() < deadline and not answers, f"the job never started {answers}"
            time.sleep(0.05)

        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(60)
        took = time.monotonic() - started
        waiting.join(10)
        # 3 s for the running batch, and some for the interpreter to exit; the job itself takes far longer.
        assert took < 12, f"shutdown took {took:.1f} s"
        assert answers and answers[0].status_code == 503, answers and answers[0].text[:300]
        assert answers[0].json()["error"]["code"] == "shutting_down"
        log = (tmp_path / "server" / "server.log").read_text()
        assert "retried at the next start" in log
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait()
