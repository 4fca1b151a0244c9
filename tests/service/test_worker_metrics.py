"""`glmimage serve worker --metrics-port`: the metrics listen on loopback unless --metrics-host says otherwise."""

import argparse
import socket
import uuid

import httpx
import prometheus_client

from glmimage.cli.serve_cmd import register
from glmimage.service.rq_queue import run_worker
from glmimage.service.settings import Settings
from tests.service.service_helpers import redis_or_fail


def parse(argv):
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    return parser.parse_args(argv)


def test_metrics_host_option():
    assert parse(["serve", "worker", "--metrics-port", "9100"]).metrics_host == "127.0.0.1"
    assert parse(["serve", "worker", "--metrics-port", "9100", "--metrics-host", "0.0.0.0"]).metrics_host == "0.0.0.0"


def test_worker_metrics_bind_loopback_by_default(engine, tmp_path, monkeypatch):
    redis_url, _ = redis_or_fail()
    servers = []
    real_start = prometheus_client.start_http_server

    def recording_start(*args, **kwargs):
        server, thread = real_start(*args, **kwargs)
        servers.append(server)
        return server, thread

    monkeypatch.setattr(prometheus_client, "start_http_server", recording_start)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = Settings(model="tiny", data_dir=tmp_path, queue="rq", redis_url=redis_url, ocr=False, log_json=False,
                        rq_queue=f"glmimage-test-{uuid.uuid4().hex[:10]}")
    run_worker(settings, burst=True, name=f"metrics-{uuid.uuid4().hex[:6]}", engine=engine, metrics_port=port)
    try:
        assert [s.server_address[0] for s in servers] == ["127.0.0.1"]
        assert "glmimage_" in httpx.get(f"http://127.0.0.1:{port}/metrics").text
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
