"""Training recipes for every component: VAE -> semantic-VQ tokenizer -> planner and decoder -> LoRA.

One module per stage (`vae`, `tokenizer`, `planner`, `decoder`, `lora`), each a `train(config)` loop over the shared
set-up in `common`. Every stage reads a model directory in the official layout and writes a complete one back.
"""
