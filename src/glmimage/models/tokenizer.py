"""The planner's tokenizer for the small presets, built offline in the official layout.

Official layout (zai-org/GLM-Image): ids 0..C-1 are the VQ codes, C is image start (also `bos`), C+1 image end
(`eos`); the text vocabulary lives above them, then the special tokens the processor reads (`<|image|>` placeholder,
`<sop>`/`<eop>` around a grid size). We keep that order with a smaller codebook C and a byte-level BPE vocabulary
trained here on design-prompt text, so every byte string stays encodable.
"""

from __future__ import annotations

from dataclasses import dataclass

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

IMAGE_START = "<|begin_of_image|>"
IMAGE_END = "<|end_of_image|>"
IMAGE_TOKEN = "<|image|>"
GRID_BOS = "<sop>"
GRID_EOS = "<eop>"
PAD_TOKEN = "<|endoftext|>"

# Each image item renders as <image start><|image|><image end>, each text item as its text (official shape);
# the processor appends "<sop>H W<eop>[<sop>h w<eop>]<bos>" after the template.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['content'] is string -%}{{ message['content'] }}"
    "{%- else -%}{%- for item in message['content'] -%}"
    "{%- if item['type'] == 'image' -%}" + IMAGE_START + IMAGE_TOKEN + IMAGE_END
    + "{%- elif item['type'] == 'text' -%}{{ item['text'] }}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{%- endfor -%}"
)

# Text the BPE merges are learned from: the vocabulary of design prompts (layout, colours, kinds, style).
_CORPUS_WORDS = """
a an the with and of in on at to for from by as is are this that top bottom left right centre center middle
title subtitle heading label caption price tag sale offer discount new now only today free shipping order
poster banner card slide cover recipe step steps panel panels dashboard chart bar pie line icon logo badge
background foreground border frame shadow gradient flat minimal bold modern clean simple elegant playful vintage
red green blue yellow orange purple pink brown black white gray grey cyan teal navy gold silver beige
circle square triangle star heart arrow rectangle rounded box button text word words letter letters font
large small big tiny wide tall vertical horizontal square portrait landscape grid row column one two three four
five six first second third photo product mascot scene replace change recolour recolor add remove move
restyle style palette theme keep same identity edit image picture design layout region area corner
coffee tea cake pizza bread fresh summer winter spring autumn open close shop store market menu event
concert festival meeting report weekly monthly total revenue users growth percent number numbers date time
""".split()


@dataclass(frozen=True)
class TokenizerSpec:
    """How to build a small-preset tokenizer: codebook size and the BPE text vocabulary size."""

    codebook_size: int
    text_vocab_size: int

    def __post_init__(self) -> None:
        if self.codebook_size < 2:
            raise ValueError(f"codebook_size must be >= 2, got {self.codebook_size}")
        if self.text_vocab_size < 256 + 16:
            raise ValueError(f"text_vocab_size must hold the 256 byte symbols, got {self.text_vocab_size}")


def _corpus() -> list[str]:
    words = _CORPUS_WORDS
    lines = [" ".join(words[i : i + 12]) for i in range(0, len(words), 12)]
    lines += [w.capitalize() for w in words] + [w.upper() for w in words]
    # Digits and prices appear in every information-dense design.
    lines += [f"${n}.99 {n}% {n}:00" for n in range(0, 100)]
    return lines * 4


def build_planner_tokenizer(spec: TokenizerSpec) -> PreTrainedTokenizerFast:
    """A fast tokenizer with ids 0..C-1 = codes, C = image start (bos), C+1 = image end (eos), BPE above."""
    code_tokens = [f"<|vq_{i}|>" for i in range(spec.codebook_size)]
    leading_specials = code_tokens + [IMAGE_START, IMAGE_END]

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=len(leading_specials) + spec.text_vocab_size,
        special_tokens=leading_specials,  # the trainer gives special tokens the first ids, in order
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=2,
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    tok.add_special_tokens([IMAGE_TOKEN, GRID_BOS, GRID_EOS, PAD_TOKEN])

    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=IMAGE_START,
        eos_token=IMAGE_END,
        pad_token=PAD_TOKEN,
        padding_side="left",  # the reference pipeline batches prompts with left padding
        extra_special_tokens={"image_token": IMAGE_TOKEN, "grid_bos_token": GRID_BOS, "grid_eos_token": GRID_EOS},
        chat_template=CHAT_TEMPLATE,
    )
    assert fast.convert_tokens_to_ids(IMAGE_START) == spec.codebook_size
    assert fast.convert_tokens_to_ids(IMAGE_END) == spec.codebook_size + 1
    return fast
