"""Training recipes for every component: VAE -> semantic-VQ tokenizer -> planner and decoder -> LoRA.

One module per stage (`vae`, `tokenizer`, `planner`, `glyph`, `decoder`, `lora`), each a `train(config)` loop over
the shared set-up, one module per concern: `config` (config fields, YAML, the stage command line), `run` (the run
handle, seeding, the step loop), `optim` (optimiser, schedule, EMA), `logs` (log.csv, loss.png), `checkpoints`
(save and resume) and `export` (model directories, metrics); `common` re-exports them all. Every stage reads a model
directory in the official layout and writes a complete one back.
"""
