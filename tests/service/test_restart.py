"""A real `glmimage serve` killed (SIGKILL) while it runs a job: after a restart nothing is lost. The queued jobs
run, and the one that was running is retried."""

import time

import httpx
from benchmarks.load_test import ServerProcess


def test_restart_after_sigkill_loses_nothing(tmp_path):
    server = ServerProcess(tmp_path / "server", env={"OMP_NUM_THREADS": "1", "GLMIMAGE_BATCH_WAIT_S": "0"})
    headers = {"Authorization": f"Bearer {server.create_key()}"}
    url = server.start()
    try:
        # Own seeds: each job is its own batch, so one runs while the others wait in the queue.
        slow = {"size": "256x256", "steps": 8}
        ids = [httpx.post(f"{url}/v1/jobs", json={"prompt": f"poster {i}", "seed": i, **slow}, headers=headers)
               .json()["id"] for i in range(3)]
        deadline = time.monotonic() + 60
        while httpx.get(f"{url}/v1/jobs/{ids[0]}", headers=headers).json()["status"] != "running":
            assert time.monotonic() < deadline, "the first job never started"
            time.sleep(0.02)
        server.kill()
        url = server.start()  # same database, new process
        deadline = time.monotonic() + 120
        while True:
            jobs = [httpx.get(f"{url}/v1/jobs/{i}", headers=headers).json() for i in ids]
            if all(j["status"] in ("succeeded", "failed", "canceled") for j in jobs) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert [j["status"] for j in jobs] == ["succeeded"] * 3, [(j["status"], j["error"]) for j in jobs]
        assert jobs[0]["attempts"] == 2  # cut off once, retried
        assert [j["attempts"] for j in jobs[1:]] == [1, 1]  # were queued: ran once, after the restart
        assert all(len(j["outputs"]) == 1 for j in jobs)
        log = (tmp_path / "server" / "server.log").read_text()
        assert "recovered interrupted jobs" in log and ids[0] in log
    finally:
        server.stop()
