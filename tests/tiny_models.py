"""Tiny random causal LMs and an offline tokenizer, for tests that must not download anything.

Import as ``import tiny_models`` (tests/ is put on sys.path). A model built here has a few
thousand parameters, generates on the CPU in milliseconds and produces noise, which is all
the generation and training plumbing needs.
"""

from __future__ import annotations

from pathlib import Path

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL_TOKENS = ["<|pad|>", "<|im_end|>", "<|im_start|>"]
SENTENCES = [
    "What is the capital of France? Paris is the capital of France.",
    "How do I boil an egg? Put the egg in boiling water for eight minutes.",
    "Write a short poem about the sea and the wind.",
    "Give me three tips for sleeping better at night.",
    "The quick brown fox jumps over the lazy dog.",
    "user assistant system",
]


def tiny_tokenizer(chat_template: str | None = CHAT_TEMPLATE):
    """A byte-level BPE tokenizer trained on a few sentences (any text encodes, none is unknown)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(SENTENCES, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token="<|im_end|>", pad_token="<|pad|>"
    )
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    return tokenizer


def tiny_llama(tokenizer, seed: int = 0):
    """A 2-layer, 32-wide random Llama whose vocabulary matches ``tokenizer``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=len(tokenizer),
        max_position_embeddings=256,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.eval()
    return model


def tiny_model_and_tokenizer(seed: int = 0):
    tokenizer = tiny_tokenizer()
    tokenizer.padding_side = "left"
    return tiny_llama(tokenizer, seed), tokenizer


def save_tiny_model(directory: str | Path, seed: int = 0) -> Path:
    """Write a tiny model + tokenizer as save_pretrained does (config.json, model.safetensors)."""
    model, tokenizer = tiny_model_and_tokenizer(seed)
    directory = Path(directory)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def tiny_reward_classifier():
    """A tiny random Llama with a one-logit score head and its tokenizer: a reward model that
    TRL's RewardTrainer trains in seconds."""
    import torch
    from transformers import LlamaConfig, LlamaForSequenceClassification

    tokenizer = tiny_tokenizer()
    config = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, vocab_size=len(tokenizer),
                         max_position_embeddings=512, num_labels=1,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    return LlamaForSequenceClassification(config), tokenizer
