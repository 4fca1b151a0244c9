"""What OpenAI Images users expect (issue 24): the official `openai` client against a real uvicorn server on
loopback: models, the SDKs' sizes, output formats, quality, moderation, usage, rate-limit headers, CORS."""

import base64
import io

import httpx
import openai
import pytest
from PIL import Image

from tests.service.service_helpers import LiveServer


@pytest.fixture(scope="module")
def server(engine, tmp_path_factory):
    from glmimage.service.app import create_app
    from glmimage.service.settings import Settings

    settings = Settings(model="tiny", data_dir=tmp_path_factory.mktemp("openai-compat"), ocr=False, log_json=False)
    with LiveServer(create_app(settings, engine=engine, text_checker=None)) as live:
        yield live


@pytest.fixture(scope="module")
def client(server):
    key = server.app.state.services.bootstrap_key
    return openai.OpenAI(api_key=key, base_url=server.url + "/v1", max_retries=0, timeout=60)


def decode(item) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(item.b64_json)))


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
