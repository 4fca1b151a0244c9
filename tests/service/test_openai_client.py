"""The official `openai` Python client against a real uvicorn server on loopback."""

import io

import httpx
import openai
import pytest
from PIL import Image

from tests.service.service_helpers import decode_b64, openai_client, png_bytes, tiny_live_server


@pytest.fixture(scope="module")
def server(engine, tmp_path_factory):
    with tiny_live_server(engine, tmp_path_factory.mktemp("openai")) as live:
        yield live


@pytest.fixture(scope="module")
def client(server):
    return openai_client(server)


decode = decode_b64


def test_generate_b64_with_n(client):
    result = client.images.generate(prompt='A poster titled "SALE"', model="tiny", n=2, size="64x64",
                                     response_format="b64_json", extra_body={"steps": 1, "seed": 3})
    assert len(result.data) == 2 and all(decode(d).size == (64, 64) for d in result.data)
    assert result.data[0].revised_prompt == 'A poster titled "SALE"'
    assert result.created > 0


def test_generate_url_is_fetchable(client):
    result = client.images.generate(prompt="a green triangle", size="96x64", response_format="url",
                                    extra_body={"steps": 1})
    image = Image.open(io.BytesIO(httpx.get(result.data[0].url).content))
    assert image.size == (96, 64)


def test_edit_with_several_images(client):
    refs = [("a.png", png_bytes((64, 96), 1), "image/png"), ("b.png", png_bytes((64, 64), 2), "image/png")]
    result = client.images.edit(image=refs, prompt='Put the text "HELLO" on it', n=1, size="auto",
                                response_format="b64_json", extra_body={"steps": 1})
    assert decode(result.data[0]).size == (64, 96)
    single = client.images.edit(image=refs[0], prompt="make it blue", size="64x64", extra_body={"steps": 1})
    assert decode(single.data[0]).size == (64, 64)


def test_errors_map_to_client_exceptions(client, server):
    with pytest.raises(openai.BadRequestError, match="multiple of 32"):
        client.images.generate(prompt="x", size="100x100")
    with pytest.raises(openai.BadRequestError, match="content_policy_violation|personal_data"):
        client.images.generate(prompt="print 4111 1111 1111 1111 big", size="64x64")
    bad = openai.OpenAI(api_key="gik_wrong", base_url=server.url + "/v1", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.images.generate(prompt="x", size="64x64")
