"""Images from the service carry the same PNG metadata as the CLI's (glmimage.io), and a job that left steps to the
model records the steps it ran with. On SQLite and PostgreSQL."""

import base64
import io

from PIL import Image

from glmimage.io import METADATA_KEY, read_png_metadata
from tests.service.service_helpers import auth, png_bytes

POLICY = """
name: fixed-steps
parameters:
  steps:      {settable: false, default: null}
  guidance:   {settable: true, min: 1.0, max: 5.0, default: null}
  size:       {settable: true, min: 64, max: 512, default: null}
  seed:       {settable: true, min: 0, max: 4294967295, default: null}
  num_images: {settable: true, min: 1, max: 4, default: 1}
"""


def test_service_pngs_carry_the_cli_metadata_and_defaults_are_recorded(make_client, database_url, engine):
    client = make_client(database_url=database_url)
    headers = auth(client.app.state.services.bootstrap_key)
    prompt = 'A café sign reading "OPEN"'
    response = client.post("/v1/images/generations", json={"prompt": prompt, "size": "64x64", "n": 2, "seed": 11},
                           headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    job = body["glmimage"]
    default_steps = engine.generate("x", width=64, height=64, seed=0).metadata[0]["steps"]
    assert job["steps"] == default_steps  # what ran, not null
    assert client.get(f"/v1/jobs/{job['id']}", headers=headers).json()["steps"] == default_steps

    for item, output in zip(body["data"], job["outputs"]):
        data = base64.b64decode(item["b64_json"])
        assert client.get(output["url"]).content == data  # the stored asset is the same file
        meta = read_png_metadata(io.BytesIO(data))
        assert meta["prompt"] == prompt and meta["seed"] == output["seed"] and meta["model_id"] == "tiny"
        assert meta["steps"] == default_steps and meta["plan_hash"] == output["plan_hash"]
        assert meta["guidance"] == job["guidance"] and meta["generation_id"] == job["id"]
        assert (meta["width"], meta["height"]) == (64, 64)
        with Image.open(io.BytesIO(data)) as image:  # the readable chunks, as `glmimage generate` writes them
            assert METADATA_KEY in image.text and image.text["prompt"] == prompt
            assert image.text["seed"] == str(output["seed"]) and image.text["steps"] == str(default_steps)

    edit = client.post("/v1/images/edits", data={"prompt": "make it blue", "size": "64x64"},
                       files=[("image", ("r.png", png_bytes((64, 64)), "image/png"))], headers=headers)
    assert edit.status_code == 200, edit.text
    meta = read_png_metadata(io.BytesIO(base64.b64decode(edit.json()["data"][0]["b64_json"])))
    assert meta["prompt"] == "make it blue" and meta["num_references"] == 1
    assert edit.json()["glmimage"]["steps"] == meta["steps"]


def test_rerun_of_a_defaulted_job_under_a_policy_that_fixes_steps(make_client, tmp_path):
    (tmp_path / "policy.yaml").write_text(POLICY)
    client = make_client(parameter_policy=str(tmp_path / "policy.yaml"))
    headers = auth(client.app.state.services.bootstrap_key)
    first = client.post("/v1/images/generations", json={"prompt": "a lake", "size": "64x64"}, headers=headers)
    assert first.status_code == 200, first.text
    source = first.json()["glmimage"]
    assert source["steps"] is not None and source["guidance"] is not None  # recorded as run
    rerun = client.post(f"/v1/generations/{source['id']}/rerun", json={}, headers=headers)
    assert rerun.status_code == 202, rerun.text  # the recorded steps are not re-sent as if the user set them
    assert rerun.json()["guidance"] == source["guidance"]
