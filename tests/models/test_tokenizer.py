from glmimage.models.tokenizer import GRID_BOS, GRID_EOS, IMAGE_TOKEN, TokenizerSpec, build_planner_tokenizer


def test_layout_codes_first_then_image_start_end_then_text():
    tok = build_planner_tokenizer(TokenizerSpec(codebook_size=64, text_vocab_size=512))
    assert tok.convert_tokens_to_ids("<|vq_0|>") == 0
    assert tok.convert_tokens_to_ids("<|vq_63|>") == 63
    assert tok.bos_token_id == 64 and tok.eos_token_id == 65
    text_ids = tok("poster title", add_special_tokens=False).input_ids
    assert min(text_ids) > 65
    # the attributes GlmImageProcessor reads
    assert (tok.image_token, tok.grid_bos_token, tok.grid_eos_token) == (IMAGE_TOKEN, GRID_BOS, GRID_EOS)


def test_round_trip_of_any_bytes_and_the_chat_template():
    tok = build_planner_tokenizer(TokenizerSpec(codebook_size=16, text_vocab_size=300))
    text = 'Ünïcode «quotes» "SALE" 50% 「标题」'
    assert tok.decode(tok(text, add_special_tokens=False).input_ids) == text
    rendered = tok.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "hi"}]}], tokenize=False)
    assert rendered == "<|begin_of_image|><|image|><|end_of_image|>hi"
