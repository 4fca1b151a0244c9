"""What OpenAI Images users expect (issue 24): the official `openai` client against a real uvicorn server on
loopback: models, the SDKs' sizes, output formats, quality, moderation, usage, rate-limit headers, CORS."""

import io

import httpx
import openai
import pytest
from PIL import Image

from tests.service.service_helpers import decode_b64, openai_client, tiny_live_server


@pytest.fixture(scope="module")
def server(engine, tmp_path_factory):
    with tiny_live_server(engine, tmp_path_factory.mktemp("openai-compat")) as live:
        yield live


@pytest.fixture(scope="module")
def client(server):
    return openai_client(server)


decode = decode_b64


def test_models_list_and_retrieve(client, engine):
    models = client.models.list()
    assert [m.id for m in models.data] == [engine.model_id]
    assert models.data[0].object == "model" and models.data[0].owned_by == "glmimage" and models.data[0].created > 0
    assert client.models.retrieve(engine.model_id).id == engine.model_id
    assert client.models.retrieve("glm-image").id == "glm-image"  # the family alias `model` also accepts
    with pytest.raises(openai.NotFoundError, match="not served here"):
        client.models.retrieve("dall-e-3")


def test_models_need_a_key(server):
    response = httpx.get(server.url + "/v1/models")
    assert response.status_code == 401 and response.json()["error"]["code"] == "missing_api_key"


def test_nearest_same_aspect():
    from glmimage.models.presets import get_preset
    from glmimage.service.submission import nearest_same_aspect

    tiny = get_preset("tiny").limits  # 64..512
    assert nearest_same_aspect(1024, 1024, tiny) == (512, 512)
    assert nearest_same_aspect(1536, 1024, tiny) == (480, 320)
    assert nearest_same_aspect(1024, 1536, tiny) == (320, 480)
    assert nearest_same_aspect(1792, 1024, tiny) == (448, 256)  # 7:4 exactly


@pytest.mark.parametrize("asked, made", [("1536x1024", "480x320"), ("auto", "64x64")])
def test_sdk_sizes_are_mapped_and_the_size_made_returned(client, asked, made):
    result = client.images.generate(prompt="a red circle", size=asked, extra_body={"steps": 1, "seed": 1})
    assert result.size == made
    assert decode(result.data[0]).size == tuple(map(int, made.split("x")))
    assert result.model_extra["glmimage"]["width"] == int(made.split("x")[0])


def test_sizes_the_model_makes_and_other_sizes_are_not_mapped(client):
    assert client.images.generate(prompt="a dot", size="96x64", extra_body={"steps": 1}).size == "96x64"
    with pytest.raises(openai.BadRequestError, match="multiple of 32"):
        client.images.generate(prompt="a dot", size="1000x1000")  # not an SDK size: refused as before


def test_policy_can_reject_sdk_sizes(make_client, tmp_path):
    import yaml

    from glmimage.policy.parameters import DEFAULT_POLICY_PATH

    policy = yaml.safe_load(DEFAULT_POLICY_PATH.read_text())
    policy["openai_sizes"] = "reject"
    path = tmp_path / "reject.yaml"
    path.write_text(yaml.safe_dump(policy))
    api = make_client(parameter_policy=str(path))
    headers = {"Authorization": f"Bearer {api.app.state.services.bootstrap_key}"}
    response = api.post("/v1/images/generations", headers=headers,
                           json={"prompt": "x", "size": "1024x1536", "steps": 1})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_size" and "320x480" in error["message"] and "rejects" in error["message"]


@pytest.mark.parametrize("fmt, pil", [("jpeg", "JPEG"), ("webp", "WEBP"), ("png", "PNG")])
def test_output_format(client, fmt, pil):
    extra = {"output_compression": 60} if fmt != "png" else {}
    result = client.images.generate(prompt="a blue square", size="64x64", output_format=fmt, background="opaque",
                                    extra_body={"steps": 1, "seed": 5}, **extra)
    image = decode(result.data[0])
    assert image.format == pil and image.size == (64, 64) and image.mode == "RGB"
    assert result.output_format == fmt and result.background == "opaque"


def test_output_format_as_url_and_compression(client):
    low = client.images.generate(prompt="a noisy field", size="64x64", output_format="jpeg", output_compression=5,
                                 response_format="url", extra_body={"steps": 1, "seed": 9})
    assert "format=jpeg&compression=5" in low.data[0].url
    small = httpx.get(low.data[0].url)
    assert small.headers["content-type"] == "image/jpeg" and Image.open(io.BytesIO(small.content)).format == "JPEG"
    best = httpx.get(low.data[0].url.replace("compression=5", "compression=100"))
    assert len(best.content) > len(small.content)


def test_output_options_refused(client):
    with pytest.raises(openai.BadRequestError, match="no alpha") as exc:
        client.images.generate(prompt="a logo", size="64x64", background="transparent")
    assert exc.value.code == "unsupported_parameter"
    with pytest.raises(openai.BadRequestError, match="png is lossless"):
        client.images.generate(prompt="a logo", size="64x64", output_compression=50)
    with pytest.raises(openai.BadRequestError, match="output_format"):
        client.images.generate(prompt="a logo", size="64x64", output_format="gif")


def test_edit_output_format(client):
    from tests.service.service_helpers import png_bytes

    result = client.images.edit(image=("a.png", png_bytes((64, 64), 3), "image/png"), prompt="make it red",
                                output_format="webp", background="auto", extra_body={"steps": 1})
    assert decode(result.data[0]).format == "WEBP" and result.output_format == "webp"


@pytest.mark.parametrize("quality, steps", [("low", 2), ("medium", 4), ("high", 6), ("auto", 4), ("hd", 6)])
def test_quality_maps_to_steps(client, quality, steps):
    result = client.images.generate(prompt="a tree", size="64x64", quality=quality, extra_body={"seed": 2})
    assert result.model_extra["glmimage"]["steps"] == steps  # tiny's default is 4 steps
    assert result.quality == quality


def test_explicit_steps_win_over_quality_and_unknown_quality_is_refused(client):
    result = client.images.generate(prompt="a tree", size="64x64", quality="high", extra_body={"steps": 1})
    assert result.model_extra["glmimage"]["steps"] == 1
    with pytest.raises(openai.BadRequestError, match="quality='ultra' is not one of") as exc:
        client.images.generate(prompt="a tree", size="64x64", quality="ultra")
    assert exc.value.param == "quality"


def test_quality_policy():
    from glmimage.errors import InputError
    from glmimage.policy import policy_from_dict

    rules = {"steps": {"min": 2, "max": 40}, "guidance": {}, "size": {}, "seed": {}, "num_images": {"max": 4}}
    policy = policy_from_dict({"parameters": rules, "quality": {"low": 0.1, "high": 3, "auto": None}})
    assert policy.steps_for_quality("low", 4) == 2  # 0.4 steps, raised to the steps rule's minimum
    assert policy.steps_for_quality("high", 30) == 40  # 90, lowered to its maximum
    assert policy.steps_for_quality("auto", 30) is None
    fixed = policy_from_dict({"parameters": {**rules, "steps": {"settable": False}}})
    assert fixed.steps_for_quality("high", 30) is None  # the policy fixes steps: quality changes nothing
    with pytest.raises(InputError, match="openai_sizes"):
        policy_from_dict({"parameters": rules, "openai_sizes": "stretch"})
    with pytest.raises(InputError, match="factor"):
        policy_from_dict({"parameters": rules, "quality": {"low": -1}})


def test_moderation_levels_of_the_safety_policy():
    from glmimage.service.safety import SafetyPolicy

    policy = SafetyPolicy.load(None)
    assert policy.check("a mock passport").action == "review"
    assert policy.at_level("auto").check("a mock passport").action == "review"
    assert policy.at_level("low").check("a mock passport").action == "allow"
    assert policy.at_level("low").check("nsfw poster").action == "block"  # blocked at every shipped level
    with pytest.raises(ValueError, match="not one of"):
        policy.at_level("off")
    bare = SafetyPolicy.from_dict({"blocked_terms": ["secret"]})  # no moderation section: auto and low, as written
    assert bare.at_level("low").check("secret").action == "block"
    with pytest.raises(ValueError, match="unknown category"):
        SafetyPolicy.from_dict({"blocked_terms": ["x"], "moderation": {"auto": {}, "low": {"nope": "allow"}}})
    with pytest.raises(ValueError, match="lack 'auto'"):
        SafetyPolicy.from_dict({"blocked_terms": ["x"], "moderation": {"low": {}}})


def test_moderation_parameter(client):
    flagged = client.images.generate(prompt='A mock passport page titled "DEMO"', size="64x64",
                                     extra_body={"steps": 1})
    assert "official_documents" in flagged.model_extra["glmimage"]["policy_flag"]
    assert flagged.model_extra["glmimage"]["outputs"][0]["review_status"] == "needs_review"
    low = client.images.generate(prompt='A mock passport page titled "DEMO"', size="64x64", moderation="low",
                                 extra_body={"steps": 1})
    assert low.model_extra["glmimage"]["policy_flag"] is None and low.model_extra["glmimage"]["moderation"] == "low"
    with pytest.raises(openai.BadRequestError, match="personal_data"):
        client.images.generate(prompt="print 4111 1111 1111 1111", size="64x64", moderation="low")
    with pytest.raises(openai.BadRequestError, match="moderation 'none' is not one of") as exc:
        client.images.generate(prompt="a cat", size="64x64", extra_body={"moderation": "none"})
    assert exc.value.param == "moderation"


def test_usage_block(client, engine):
    from tests.service.service_helpers import png_bytes

    prompt = 'A poster titled "SALE"'
    result = client.images.generate(prompt=prompt, size="96x64", n=2, extra_body={"steps": 1})
    usage = result.usage
    text_tokens = len(engine.pipe.processor.tokenizer(prompt)["input_ids"])
    assert usage.input_tokens_details.text_tokens == text_tokens and usage.input_tokens_details.image_tokens == 0
    assert usage.output_tokens == 2 * 3 * 2  # two images of 3x2 planner codes
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    edit = client.images.edit(image=("a.png", png_bytes((64, 96), 1), "image/png"), prompt="make it blue",
                              extra_body={"steps": 1})
    assert edit.usage.input_tokens_details.image_tokens == 2 * 3  # the 64x96 reference: 2x3 codes
    assert edit.usage.output_tokens == 2 * 3


def test_rate_limit_headers(client, server):
    from tests.service.service_helpers import new_key

    class Api:  # new_key wants something with `.app`
        app = server.app

    headers = new_key(Api, ["generate"], rate_limit_per_minute=3, quota_images=5)
    key = headers["Authorization"].removeprefix("Bearer ")
    limited = openai.OpenAI(api_key=key, base_url=server.url + "/v1", max_retries=0, timeout=60)
    raw = limited.images.with_raw_response.generate(prompt="a dot", size="64x64", n=2, extra_body={"steps": 1})
    assert raw.headers["x-ratelimit-limit-requests"] == "3"
    assert raw.headers["x-ratelimit-remaining-requests"] == "2"
    assert raw.headers["x-ratelimit-reset-requests"].endswith("s")
    assert raw.headers["x-ratelimit-limit-images"] == "5" and raw.headers["x-ratelimit-remaining-images"] == "3"
    me = httpx.get(server.url + "/v1/me", headers=headers)  # any authenticated request reports them, taking none
    assert me.headers["x-ratelimit-remaining-requests"] == "2" and me.headers["x-ratelimit-remaining-images"] == "3"
    limited.images.generate(prompt="a dot", size="64x64", extra_body={"steps": 1})
    limited.images.generate(prompt="a dot", size="64x64", extra_body={"steps": 1})
    with pytest.raises(openai.RateLimitError) as exc:
        limited.images.generate(prompt="a dot", size="64x64", extra_body={"steps": 1})
    assert exc.value.response.headers["x-ratelimit-remaining-requests"] == "0"
    assert exc.value.response.headers["x-ratelimit-remaining-images"] == "1"
    assert "retry-after" in exc.value.response.headers
    unlimited = httpx.get(server.url + "/v1/me", headers={"Authorization": f"Bearer {client.api_key}"})
    assert "x-ratelimit-limit-requests" in unlimited.headers and "x-ratelimit-limit-images" not in unlimited.headers


def test_cors_is_off_by_default(server):
    response = httpx.options(server.url + "/v1/images/generations", headers={
        "Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in response.headers


def test_cors_allowed_origins(make_client):
    api = make_client(cors_origins="https://app.example.com, http://localhost:3000")
    preflight = api.options("/v1/images/generations", headers={
        "Origin": "https://app.example.com", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://app.example.com"
    error = api.get("/v1/models", headers={"Origin": "http://localhost:3000"})  # no key: 401, still readable
    assert error.status_code == 401 and error.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert "x-request-id" in error.headers["access-control-expose-headers"]
    other = api.get("/healthz", headers={"Origin": "https://evil.example.com"})
    assert "access-control-allow-origin" not in other.headers


def test_cors_setting_is_checked(make_settings):
    from glmimage.service.settings import Settings

    assert Settings.from_env({"GLMIMAGE_CORS_ORIGINS": "*"}).cors_origin_list == ["*"]
    with pytest.raises(ValueError, match="not an origin"):
        make_settings(cors_origins="https://app.example.com/path")


def alpha_mask(size, edit_box) -> bytes:
    """OpenAI's edit mask: opaque everywhere but `edit_box` (left, top, right, bottom), which is alpha 0."""
    mask = Image.new("RGBA", size, (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), edit_box)
    buffer = io.BytesIO()
    mask.save(buffer, format="PNG")
    return buffer.getvalue()


def test_masked_edit_keeps_the_reference_outside_the_mask(client):
    import numpy as np

    from tests.service.service_helpers import png_bytes

    reference = png_bytes((128, 96), 4)
    result = client.images.edit(image=("a.png", reference, "image/png"), prompt="paint the left side red",
                                mask=("m.png", alpha_mask((128, 96), (0, 0, 48, 96)), "image/png"),
                                extra_body={"steps": 2, "seed": 1})
    out = np.asarray(decode(result.data[0]).convert("RGB")).astype(int)
    source = np.asarray(Image.open(io.BytesIO(reference)).convert("RGB")).astype(int)
    assert out.shape == source.shape and result.size == "128x96"
    assert np.abs(out[:, 64:] - source[:, 64:]).max() <= 1  # kept (beyond the feathered border)
    assert np.abs(out[:, :40] - source[:, :40]).mean() > 20  # painted
    job = result.model_extra["glmimage"]
    assert job["mask_hash"] and job["outputs"][0]["seed"] == 1
    assert job["outputs"][0]["url"]
    unmasked = client.images.edit(image=("a.png", reference, "image/png"), prompt="paint the left side red",
                                  extra_body={"steps": 2, "seed": 1, "keep": False})
    assert np.abs(np.asarray(decode(unmasked.data[0]).convert("RGB")).astype(int)[:, 64:] - source[:, 64:]).mean() > 20


def test_masked_edit_rerun_keeps_the_mask(server, client):
    from tests.service.service_helpers import png_bytes

    result = client.images.edit(image=("a.png", png_bytes((64, 64), 5), "image/png"), prompt="x",
                                mask=("m.png", alpha_mask((64, 64), (0, 0, 32, 32)), "image/png"),
                                extra_body={"steps": 1})
    job = result.model_extra["glmimage"]
    rerun = httpx.post(f"{server.url}/v1/generations/{job['id']}/rerun", json={},
                       headers={"Authorization": f"Bearer {client.api_key}"})
    assert rerun.status_code == 202 and rerun.json()["mask_hash"] == job["mask_hash"]


@pytest.mark.parametrize("mask, extra, code, words", [
    (lambda: png_rgb((64, 64)), {}, "invalid_mask", "no alpha channel"),
    (lambda: alpha_mask((64, 32), (0, 0, 8, 8)), {}, "invalid_mask", "must be the size of the first image (64x64)"),
    (lambda: alpha_mask((64, 64), (0, 0, 0, 0)), {}, "invalid_mask", "marks nothing to edit"),
    (lambda: b"not an image", {}, "invalid_mask", "not a readable image"),
    (lambda: alpha_mask((64, 64), (0, 0, 8, 8)), {"size": "96x96"}, "invalid_size", "keeps the reference's size"),
    (lambda: alpha_mask((64, 64), (0, 0, 8, 8)), {"keep": "false"}, "invalid_value", "contradict"),
])
def test_bad_masks_are_refused(server, client, mask, extra, code, words):
    from tests.service.service_helpers import png_bytes

    files = [("image", ("a.png", png_bytes((64, 64), 1), "image/png")), ("mask", ("m.png", mask(), "image/png"))]
    response = httpx.post(server.url + "/v1/images/edits", data={"prompt": "x", "steps": "1", **extra}, files=files,
                          headers={"Authorization": f"Bearer {client.api_key}"})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == code and words in response.json()["error"]["message"]


def png_rgb(size) -> bytes:
    from tests.service.service_helpers import png_bytes

    return png_bytes(size, 2)


def test_streaming_generation_with_partial_images(client):
    events = list(client.images.generate(prompt='A poster titled "SALE"', size="96x64", stream=True,
                                         partial_images=2, output_format="jpeg", extra_body={"steps": 2, "seed": 4}))
    kinds = [e.type for e in events]
    # The engine shows one preview (the plan at one decoder step); OpenAI allows fewer partials than asked.
    assert kinds == ["image_generation.partial_image", "image_generation.completed"]
    partial, done = events
    assert partial.partial_image_index == 0 and partial.size == "96x64" and partial.output_format == "jpeg"
    assert decode(partial).size == (96, 64) and decode(partial).format == "JPEG"
    assert decode(done).size == (96, 64) and done.usage.output_tokens == 6 and done.background == "opaque"
    plain = client.images.generate(prompt='A poster titled "SALE"', size="96x64", output_format="jpeg",
                                   extra_body={"steps": 2, "seed": 4})
    assert done.b64_json == plain.data[0].b64_json  # streaming changes nothing in the image


def test_streaming_without_partials_and_with_n(client):
    events = list(client.images.generate(prompt="a cat", size="64x64", n=2, stream=True, extra_body={"steps": 1}))
    assert [e.type for e in events] == ["image_generation.completed"] * 2


def test_streaming_edit_with_mask(client):
    from tests.service.service_helpers import png_bytes

    stream = client.images.edit(image=("a.png", png_bytes((64, 64), 6), "image/png"), prompt="make it red",
                                mask=("m.png", alpha_mask((64, 64), (0, 0, 32, 64)), "image/png"), stream=True,
                                partial_images=1, extra_body={"steps": 1})
    kinds = [e.type for e in stream]
    assert kinds == ["image_edit.partial_image", "image_edit.completed"]


def test_stream_errors(client, server):
    with pytest.raises(openai.BadRequestError, match="multiple of 32"):  # refused before the stream starts
        list(client.images.generate(prompt="x", size="100x100", stream=True))
    with pytest.raises(openai.BadRequestError, match="partial_images needs stream"):
        client.images.generate(prompt="x", size="64x64", partial_images=1)
    response = httpx.post(server.url + "/v1/jobs", json={"prompt": "x", "stream": True},
                          headers={"Authorization": f"Bearer {client.api_key}"})
    assert response.status_code == 400 and response.json()["error"]["param"] == "stream"


def test_stream_reports_a_failed_job_as_an_error_event(client, server, monkeypatch):
    from glmimage.errors import InputError

    worker = server.app.state.services.local_worker.runner

    def refuse(*args, **kwargs):
        raise InputError("the engine refused this one")

    monkeypatch.setattr(worker, "_render", refuse)
    with pytest.raises(openai.APIError, match="the engine refused this one"):
        list(client.images.generate(prompt="x", size="64x64", stream=True, extra_body={"steps": 1}))
