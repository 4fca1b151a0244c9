"""The HTTP API in-process on the real tiny engine: images, jobs, registry, review, keys, observability."""

import base64
import io
import json
import logging
import time

import pytest
from PIL import Image

from glmimage.service.jsonlog import JsonFormatter
from tests.service.service_helpers import FAST, new_key


def wait(client, headers, job_id, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}", headers=headers).json()
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {job['status']}")


def test_generation_b64_and_url(client, admin):
    r = client.post("/v1/images/generations", json={"prompt": 'A poster titled "SALE"', "n": 2, "seed": 7, **FAST},
                    headers=admin)
    assert r.status_code == 200, r.text
    body = r.json()
    images = [Image.open(io.BytesIO(base64.b64decode(d["b64_json"]))) for d in body["data"]]
    assert [im.size for im in images] == [(64, 64), (64, 64)]
    record = body["glmimage"]
    assert (record["seed"], record["num_images"], record["steps"], record["model_id"]) == (7, 2, 1, "tiny")
    assert [o["seed"] for o in record["outputs"]] == [7, 8] and all(o["plan_hash"] for o in record["outputs"])
    assert {q["check"] for q in record["outputs"][0]["qa"]} == {"blank", "flat", "resolution"}
    assert set(record["timings"]) == {"planner", "decoder", "vae"}

    r = client.post("/v1/images/generations", json={"prompt": "A blue circle", "response_format": "url", **FAST},
                    headers=admin)
    url = r.json()["data"][0]["url"]
    asset = client.get(url)  # no key needed: the content hash is the capability
    assert asset.status_code == 200 and asset.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(asset.content)).size == (64, 64)


def test_jobs_submit_status_result_cancel(client, admin):
    worker = client.app.state.services.local_worker
    worker.pause()
    job = client.post("/v1/jobs", json={"prompt": "a red square", **FAST}, headers=admin)
    assert job.status_code == 202 and job.json()["status"] == "queued"
    job_id = job.json()["id"]
    early = client.get(f"/v1/jobs/{job_id}/result", headers=admin)
    assert early.status_code == 409 and early.json()["error"]["code"] == "job_not_finished"
    doomed = client.post("/v1/jobs", json={"prompt": "never mind", **FAST}, headers=admin).json()["id"]
    canceled = client.post(f"/v1/jobs/{doomed}/cancel", headers=admin).json()
    assert canceled["status"] == "canceled"
    assert client.post(f"/v1/jobs/{doomed}/cancel", headers=admin).status_code == 409
    worker.resume()
    assert wait(client, admin, job_id)["status"] == "succeeded"
    result = client.get(f"/v1/jobs/{job_id}/result", params={"response_format": "url"}, headers=admin).json()
    assert result["data"][0]["url"].endswith(result["glmimage"]["outputs"][0]["asset_hash"])
    assert client.get(f"/v1/jobs/{doomed}/result", headers=admin).json()["error"]["code"] == "job_canceled"


def test_registry_search_rerun_and_edit_this_one(client, admin):
    first = client.post("/v1/images/generations", json={"prompt": 'Menu card "NOODLES" 100%', **FAST},
                        headers=admin).json()["glmimage"]
    client.post("/v1/images/generations", json={"prompt": "unrelated landscape", **FAST}, headers=admin)
    found = client.get("/v1/generations", params={"q": "noodles 100%"}, headers=admin).json()
    assert found["total"] == 1 and found["data"][0]["id"] == first["id"]
    assert client.get("/v1/generations", params={"q": "100_"}, headers=admin).json()["total"] == 0  # literal _

    rerun = client.post(f"/v1/generations/{first['id']}/rerun", json={}, headers=admin)
    assert rerun.status_code == 202
    again = wait(client, admin, rerun.json()["id"])
    assert again["rerun_of_id"] == first["id"] and again["prompt"] == first["prompt"]
    assert again["status"] == "succeeded" and again["seed"] != first["seed"]

    output = first["outputs"][0]
    edit = client.post(f"/v1/outputs/{output['id']}/edits", json={"prompt": 'Change the title to "RAMEN"',
                                                                    "steps": 1}, headers=admin)
    assert edit.status_code == 202, edit.text
    edited = wait(client, admin, edit.json()["id"])
    assert edited["kind"] == "edit" and edited["parent_output_id"] == output["id"]
    assert edited["reference_hashes"] == [output["asset_hash"]] and edited["status"] == "succeeded"

    prompts = client.get("/v1/prompts", params={"q": "noodles"}, headers=admin).json()
    assert prompts[0]["text"] == first["prompt"] and prompts[0]["generations"] == 2
    by_seed = client.get("/v1/generations", params={"seed": first["seed"]}, headers=admin).json()
    assert first["id"] in [g["id"] for g in by_seed["data"]]


def test_templates_and_brand_kits(client, admin):
    t = client.post("/v1/templates",
                    json={"name": "sale", "source": "A poster for {{ shop }} saying {{ headline | glyph }}"},
                    headers=admin)
    assert t.status_code == 201 and t.json()["version"] == 1 and t.json()["variables"] == ["headline", "shop"]
    t2 = client.post("/v1/templates", json={"name": "sale", "source": "A flyer saying {{ headline | glyph }}"},
                     headers=admin)
    assert t2.json()["version"] == 2
    bad = client.post("/v1/templates", json={"name": "broken", "source": "{{ oops"}, headers=admin)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_template"
    kit = client.post("/v1/brand-kits", json={"name": "acme", "palette": ["#ff0000"], "typography": ["bold sans"],
                                              "forbidden_words": ["cheap"]}, headers=admin)
    assert kit.status_code == 201 and kit.json()["palette"] == ["#FF0000"]
    assert client.post("/v1/brand-kits", json={"name": "acme"}, headers=admin).status_code == 409

    r = client.post("/v1/images/generations",
                    json={"template": "sale@1", "variables": {"shop": "Acme", "headline": "50% OFF"},
                          "brand_kit": "acme", **FAST}, headers=admin)
    assert r.status_code == 200, r.text
    record = r.json()["glmimage"]
    assert record["prompt"].startswith('A poster for Acme saying "50% OFF"') and "#FF0000" in record["prompt"]
    assert record["template_id"] == t.json()["id"] and record["brand_kit_id"] == kit.json()["id"]

    missing = client.post("/v1/jobs", json={"template": "sale", "variables": {}, **FAST}, headers=admin)
    assert missing.status_code == 400 and "headline" in missing.json()["error"]["message"]
    forbidden = client.post("/v1/jobs", json={"prompt": "cheap shoes", "brand_kit": "acme", **FAST}, headers=admin)
    assert forbidden.status_code == 400 and forbidden.json()["error"]["code"] == "brand_violation"


def test_review_flow_and_roles(client, admin):
    flagged = client.post("/v1/images/generations", json={"prompt": 'A mock passport page "DEMO"', **FAST},
                          headers=admin).json()["glmimage"]
    output = flagged["outputs"][0]
    assert flagged["policy_flag"] and output["review_status"] == "needs_review"
    assert any("prompt flagged" in r for r in output["review_reasons"])
    marketing = client.post("/v1/images/generations", json={"prompt": "a banner", "use_case": "marketing", **FAST},
                            headers=admin).json()["glmimage"]["outputs"][0]
    internal = client.post("/v1/images/generations", json={"prompt": "a draft", "use_case": "internal", **FAST},
                           headers=admin).json()["glmimage"]["outputs"][0]
    assert marketing["review_status"] == "needs_review" and internal["review_status"] == "approved"

    generator, reviewer = new_key(client, ["generate"]), new_key(client, ["review"])
    queue = client.get("/v1/review/queue", headers=reviewer).json()
    assert {o["id"] for o in queue["data"]} == {output["id"], marketing["id"]}
    assert client.get("/v1/review/queue", headers=generator).status_code == 403
    denied = client.post(f"/v1/outputs/{output['id']}/review", json={"decision": "approve"}, headers=generator)
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "insufficient_role"
    assert client.post("/v1/images/generations", json={"prompt": "x", **FAST}, headers=reviewer).status_code == 403

    done = client.post(f"/v1/outputs/{output['id']}/review", json={"decision": "approve", "note": "mock-up, fine"},
                       headers=reviewer).json()
    assert done["review_status"] == "approved" and done["review_note"] == "mock-up, fine" and done["reviewed_at"]
    client.post(f"/v1/outputs/{marketing['id']}/review", json={"decision": "reject"}, headers=reviewer)
    assert client.get("/v1/review/queue", headers=reviewer).json()["total"] == 0
    rejected = client.get("/v1/generations", params={"review_status": "rejected"}, headers=reviewer).json()
    assert [g["outputs"][0]["id"] for g in rejected["data"]] == [marketing["id"]]
    # A generate-only key sees its own work only.
    assert client.get("/v1/generations", headers=generator).json()["total"] == 0
    assert client.get(f"/v1/generations/{flagged['id']}", headers=generator).status_code == 404


def test_keys_admin(client, admin):
    created = client.post("/v1/keys", json={"name": "ci", "roles": ["generate"], "quota_images": 5}, headers=admin)
    assert created.status_code == 201
    secret = created.json()["key"]
    headers = {"Authorization": f"Bearer {secret}"}
    me = client.get("/v1/me", headers=headers).json()
    assert (me["name"], me["roles"], me["quota_images"]) == ("ci", ["generate"], 5)
    listed = client.get("/v1/keys", headers=admin).json()
    assert all("key" not in k for k in listed) and secret[:12] in [k["prefix"] for k in listed]
    assert client.get("/v1/keys", headers=headers).status_code == 403
    client.delete(f"/v1/keys/{created.json()['id']}", headers=admin)
    assert client.get("/v1/me", headers=headers).status_code == 401


def test_health_metrics_and_logs(client, admin, caplog):
    assert client.get("/healthz").json() == {"status": "ok", "checks": {}}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ok" and ready["checks"] == {"database": "ok", "model": "ok"}
    with caplog.at_level(logging.INFO, logger="glmimage.service.http"):
        r = client.post("/v1/images/generations", json={"prompt": "metrics", **FAST}, headers=admin)
    assert r.headers["x-request-id"]
    http_records = [rec for rec in caplog.records if rec.name == "glmimage.service.http"]
    line = json.loads(JsonFormatter().format(http_records[-1]))
    assert line["route"] == "/v1/images/generations" and line["status"] == 200 and line["request_id"]
    client.post("/v1/images/generations", json={"prompt": "x", "size": "65x64"}, headers=admin)
    text = client.get("/metrics").text
    for series in ('glmimage_http_requests_total{method="POST",route="/v1/images/generations",status="200"} 1.0',
                   'glmimage_http_requests_total{method="POST",route="/v1/images/generations",status="400"} 1.0',
                   'glmimage_images_generated_total{kind="generate"} 1.0', 'glmimage_queue_depth{state="queued"} 0.0',
                   'glmimage_stage_duration_seconds_count{stage="planner"} 1.0',
                   'glmimage_stage_duration_seconds_count{stage="vae"} 1.0', "glmimage_qa_pass_rate 1.0"):
        assert series in text, series


def test_openapi_schema_is_published(client):
    schema = client.get("/openapi.json").json()
    for path in ("/v1/images/generations", "/v1/images/edits", "/v1/jobs", "/v1/jobs/{job_id}/cancel",
                 "/v1/generations/{gen_id}/rerun", "/v1/review/queue", "/metrics"):
        assert path in schema["paths"]
    assert "HTTPBearer" in schema["components"]["securitySchemes"]


def test_web_ui_is_served(client):
    page = client.get("/")
    assert page.status_code == 200 and 'id="prompt"' in page.text
    assert client.get("/ui/app.js").status_code == 200


@pytest.mark.parametrize("path", ["/v1/generations/nope", "/v1/jobs/nope", "/v1/outputs/999"])
def test_unknown_ids_are_404(client, admin, path):
    r = client.get(path, headers=admin)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
