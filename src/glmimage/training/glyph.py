"""Optional stage before the decoder: Glyph-ByT5-style alignment of the glyph encoder to rendered text.

Glyph-ByT5 (Liu et al. 2024) trains its ByT5 encoder contrastively against images of rendered text before the encoder
conditions the image model, and credits this for its spelling accuracy. Here the pipeline's glyph encoder (the T5
`text_encoder` with its byte tokenizer) is paired with a small CNN over rendered strings; both are trained with the
symmetric InfoNCE loss of CLIP (learned temperature). Every batch holds each string *and a one-edit variant of it* (a
letter replaced, dropped, inserted, or two neighbours swapped), so the encoder is pushed to tell apart spellings that
differ by one glyph, which is what the decoder must render. Strings are train-split words (in the world's casing:
upper-case titles, lower-case body text) and random strings over the world's characters; held-out (validation/test)
words never occur. Only the text encoder is exported; the CNN and the two projections are training aids.

Reported on validation words (held out from this stage and from the decoder's training) and their variants: text ->
image top-1 retrieval among all of them, and the share of (word, variant) pairs whose texts each pick their own image
over the sibling's. The baseline is the same run with `train_text_encoder: false` (the heads learn to read the
encoder as it is). The decoder stage can then keep the alignment by not training the encoder:

    glmimage train glyph   --config configs/train/glyph-nano.yaml            # init: the tokenizer's model dir
    glmimage train decoder --config configs/train/decoder-nano.yaml --init runs/nano/glyph/model \
        --set train_glyph_encoder=false
"""

from __future__ import annotations

import random
import string
import sys
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from glmimage.data.fonts import BODY_FONTS, TITLE_FONTS, fit_size, load_font
from glmimage.data.vocabulary import all_words, split_of, words_for
from glmimage.errors import InputError
from glmimage.training.checkpoints import resume
from glmimage.training.config import RunConfig, stage_cli
from glmimage.training.export import export_with_ema, load_pipeline, record_metrics
from glmimage.training.metrics import save_grid
from glmimage.training.optim import make_ema, make_optimizer, optimizer_step, with_ema_weights
from glmimage.training.run import derived_seed, finish_step, start_run, train_steps

WORD_CATEGORIES = ("nouns", "adjectives", "verbs", "labels")
EXTRA_CHARS = "0123456789$.:-"  # prices, dates, step numbers


@dataclass
class GlyphTrainConfig(RunConfig):
    embed_dim: int = 128  # shared space of the two projections
    image_height: int = 32  # rendered string canvas
    image_width: int = 160
    cnn_channels: int = 64
    word_share: float = 0.5  # share of strings made of train words; the rest are random strings
    max_chars: int = 16
    init_temperature: float = 0.07
    # false: the encoder stays as it is and only the heads learn (the baseline the alignment is measured against)
    train_text_encoder: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.image_height % 8 or self.image_width % 8 or self.image_height < 16:
            raise InputError(f"image_height and image_width must be multiples of 8 (height >= 16), got "
                             f"{self.image_height} x {self.image_width}")
        if not 0 <= self.word_share <= 1:
            raise InputError(f"word_share must be in [0, 1], got {self.word_share}")
        if self.max_chars < 4 or self.embed_dim < 1 or self.cnn_channels < 8:
            raise InputError("max_chars must be >= 4, embed_dim >= 1, cnn_channels >= 8")
        if not 0 < self.init_temperature < 1:
            raise InputError(f"init_temperature must be in (0, 1), got {self.init_temperature}")


# -- strings ------------------------------------------------------------------------------------------------
def held_out(text: str) -> bool:
    """True when the text contains a validation or test word of the world (those stay unseen)."""
    known = set(all_words())
    return any(w in known and split_of("word:" + w) != "train" for w in text.lower().split())


def train_words() -> tuple[str, ...]:
    return tuple(w for c in WORD_CATEGORIES for w in words_for(c, "train")[1])


def random_string(rng: random.Random, cfg: GlyphTrainConfig) -> str:
    if rng.random() < cfg.word_share:
        text = " ".join(rng.choice(train_words()) for _ in range(rng.choice((1, 1, 2, 3))))
        text = text.upper() if rng.random() < 0.5 else text
    else:
        letters = rng.choice((string.ascii_uppercase, string.ascii_lowercase))
        text = "".join(rng.choice(letters + EXTRA_CHARS[: rng.choice((0, 0, 10, 14))])
                       for _ in range(rng.randint(2, 10)))
    return text[: cfg.max_chars].strip() or "A"


def one_edit(text: str, rng: random.Random) -> str:
    """The text with one glyph replaced, dropped, inserted, or two neighbours swapped (never the text itself)."""
    letters = string.ascii_uppercase if text.isupper() else string.ascii_lowercase
    for _ in range(20):
        i = rng.randrange(len(text))
        op = rng.choice(("replace", "drop", "insert", "swap") if len(text) > 1 else ("replace", "insert"))
        if op == "replace":
            out = text[:i] + rng.choice(letters) + text[i + 1 :]
        elif op == "drop":
            out = text[:i] + text[i + 1 :]
        elif op == "insert":
            out = text[:i] + rng.choice(letters) + text[i:]
        else:
            i = min(i, len(text) - 2)
            out = text[:i] + text[i + 1] + text[i] + text[i + 2 :]
        if out.strip() and out != text and not held_out(out):
            return out
    return text + rng.choice(letters)  # e.g. "AA" swapped gives itself: append instead


def render(text: str, rng: random.Random, cfg: GlyphTrainConfig) -> Image.Image:
    """Grey text on a grey background (contrast >= 0.4), a world font, random size and horizontal place."""
    w, h = cfg.image_width, cfg.image_height
    style = rng.choice(TITLE_FONTS + BODY_FONTS)
    size = fit_size(text, style, w - 4, h - 4, max_size=h, min_size=6)
    background = rng.random()
    ink = background + rng.choice((-1, 1)) * rng.uniform(0.4, 1.0)
    ink = 1 - ink if not 0 <= ink <= 1 else ink  # reflect into [0, 1] keeping the contrast
    image = Image.new("L", (w, h), int(255 * background))
    font = load_font(style, size)
    x0, y0, x1, y1 = font.getbbox(text)
    left = rng.randint(2, max(2, w - 2 - (x1 - x0)))
    ImageDraw.Draw(image).text((left - x0, (h - (y1 - y0)) // 2 - y0), text, fill=int(255 * ink), font=font)
    return image


def pairs(cfg: GlyphTrainConfig, split: str, positions: list[int]) -> list[tuple[str, str, int]]:
    """(text, variant, seed) per stream position: the same on every machine and process."""
    out = []
    for p in positions:
        seed = derived_seed(cfg.seed, "glyph", split, p)
        rng = random.Random(seed)
        text = random_string(rng, cfg)
        while held_out(text):
            text = random_string(rng, cfg)
        out.append((text, one_edit(text, rng), seed))
    return out


def batch(cfg: GlyphTrainConfig, items: list[tuple[str, str, int]]) -> tuple[list[str], torch.Tensor]:
    """Texts [t_0..t_B-1, v_0..v_B-1] and their rendered images (2B, 1, H, W) in [-1, 1]."""
    texts = [t for t, _, _ in items] + [v for _, v, _ in items]
    seeds = [s for _, _, s in items] + [s + 1 for _, _, s in items]
    images = [np.asarray(render(t, random.Random(s), cfg), dtype=np.float32) for t, s in zip(texts, seeds)]
    return texts, torch.from_numpy(np.stack(images))[:, None] / 127.5 - 1


# -- model ----------------------------------------------------------------------------------------------------
class GlyphImageEncoder(torch.nn.Module):
    """Strided convolutions, then average pooling to one row of 8 columns (keeps left-to-right order)."""

    def __init__(self, channels: int, embed_dim: int, columns: int = 8):
        super().__init__()
        c = channels
        self.net = torch.nn.Sequential(
            torch.nn.Conv2d(1, c // 2, 3, padding=1), torch.nn.GELU(),
            torch.nn.Conv2d(c // 2, c, 3, stride=2, padding=1), torch.nn.GELU(),
            torch.nn.Conv2d(c, c, 3, stride=2, padding=1), torch.nn.GELU(),
            torch.nn.Conv2d(c, c, 3, stride=2, padding=1), torch.nn.GELU(),
            torch.nn.AdaptiveAvgPool2d((1, columns)), torch.nn.Flatten(),
            torch.nn.Linear(c * columns, embed_dim),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


class GlyphAligner(torch.nn.Module):
    """The pipeline's glyph encoder (trained, exported) beside the image encoder and projections (not exported)."""

    def __init__(self, text_encoder, cfg: GlyphTrainConfig):
        super().__init__()
        self.text_encoder = text_encoder
        self.text_proj = torch.nn.Linear(text_encoder.config.d_model, cfg.embed_dim)
        self.image_encoder = GlyphImageEncoder(cfg.cnn_channels, cfg.embed_dim)
        self.log_scale = torch.nn.Parameter(torch.tensor(float(np.log(1 / cfg.init_temperature))))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, images: torch.Tensor):
        hidden = self.text_encoder(input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask[..., None].to(hidden.dtype)
        text = F.normalize(self.text_proj((hidden * mask).sum(1) / mask.sum(1)), dim=-1)
        image = F.normalize(self.image_encoder(images), dim=-1)
        return text, image, self.log_scale.clamp(max=float(np.log(100))).exp()


def tokenize(tokenizer, texts: list[str], device) -> tuple[torch.Tensor, torch.Tensor]:
    tokens = tokenizer(texts, padding=True, return_tensors="pt")
    return tokens.input_ids.to(device), tokens.attention_mask.to(device)


def clip_loss(text: torch.Tensor, image: torch.Tensor, scale: torch.Tensor) -> tuple[torch.Tensor, float]:
    logits = scale * text @ image.T
    labels = torch.arange(len(text), device=text.device)
    loss = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
    return loss, float((logits.argmax(1) == labels).float().mean())


# -- evaluation -------------------------------------------------------------------------------------------------
def validation_pairs(cfg: GlyphTrainConfig, n: int) -> list[tuple[str, str, int]]:
    """Validation words (upper-case, as titles are) with one-edit variants: strings no training step saw."""
    words = sorted({w for c in WORD_CATEGORIES for w in words_for(c, "validation")[0]})
    rng = random.Random(derived_seed(cfg.seed, "glyph-eval"))
    rng.shuffle(words)
    out = []
    for i, word in enumerate(words[:n]):
        text = word.upper()
        out.append((text, one_edit(text, rng), derived_seed(cfg.seed, "glyph-eval", i)))
    return out


@torch.no_grad()
def evaluate(model: GlyphAligner, tokenizer, cfg: GlyphTrainConfig, device) -> dict:
    items = validation_pairs(cfg, cfg.eval_samples)
    if not items:
        return {}
    texts, images = batch(cfg, items)
    ids, mask = tokenize(tokenizer, texts, device)
    text, image, _ = model(ids, mask, images.to(device))
    sims = text @ image.T
    n = len(items)
    own, sibling = sims.diagonal(), torch.cat([sims.diagonal(n), sims.diagonal(-n)])  # (t_i, v_i) and (v_i, t_i)
    pair_ok = (own[:n] > sibling[:n]) & (own[n:] > sibling[n:])
    return {"retrieval_top1": float((sims.argmax(1) == torch.arange(2 * n, device=device)).float().mean()),
            "variant_accuracy": float(pair_ok.float().mean()), "eval_strings": 2 * n}


# -- the stage ------------------------------------------------------------------------------------------------
def train(cfg: GlyphTrainConfig):
    run = start_run("glyph", cfg)
    pipe = load_pipeline(cfg)
    torch.manual_seed(derived_seed(cfg.seed, "glyph-heads"))  # the heads start alike in every process
    model = GlyphAligner(pipe.text_encoder, cfg).to(run.device).train()
    pipe.text_encoder.requires_grad_(cfg.train_text_encoder)
    opt, sched = make_optimizer(run, model.parameters())
    ema = make_ema(run, model)
    model, opt = run.accelerator.prepare(model, opt)
    resume(run)
    for step, _ in train_steps(run):
        texts, images = batch(cfg, pairs(cfg, "train", run.positions(step)))
        ids, mask = tokenize(pipe.tokenizer, texts, run.device)
        loss, accuracy = clip_loss(*model(ids, mask, images.to(run.device)))
        parts = {"loss": loss.item(), "batch_accuracy": accuracy}
        parts["grad_norm"] = optimizer_step(run, loss, opt, sched, model.parameters(), ema)
        finish_step(run, step + 1, parts, lambda: export_with_ema(run, pipe, ema, run.accelerator.unwrap_model(model)))
    aligner = run.accelerator.unwrap_model(model).eval()
    pipe.text_encoder.eval()
    path = export_with_ema(run, pipe, ema, aligner)
    with with_ema_weights(ema, aligner.parameters()):
        metrics = {}
        if run.main:
            metrics = {**evaluate(aligner, pipe.tokenizer, cfg, run.device),
                       "text_encoder_trained": cfg.train_text_encoder}
            texts, images = batch(cfg, validation_pairs(cfg, 8))
            pictures = [Image.fromarray(((im[0].numpy() + 1) * 127.5).astype(np.uint8)).convert("RGB")
                        for im in images]
            save_grid([pictures[: len(pictures) // 2], pictures[len(pictures) // 2 :]], run.out / "strings.png",
                      ["word", "variant"])
        record_metrics(run, metrics)
    return path


CONFIG = GlyphTrainConfig  # what `glmimage train glyph` loads the YAML into


def main(argv: list[str] | None = None) -> int:
    return stage_cli("glyph", CONFIG, train, argv)


if __name__ == "__main__":
    sys.exit(main())
