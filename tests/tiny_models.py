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


def save_tiny_gguf(path: str | Path, vocab: int = 64, hidden: int = 32, heads: int = 4, kv_heads: int = 2,
                   ff: int = 64) -> Path:
    """A one-layer random Llama as an f32 GGUF file with a toy tokenizer (tokens 'A'..'Z',
    'AA'.., no merges): enough for transformers' GGUF loading path, de-quantisation loop
    included, in milliseconds."""
    import gguf
    import numpy as np

    path = Path(path)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_context_length(64)
    writer.add_embedding_length(hidden)
    writer.add_block_count(1)
    writer.add_feed_forward_length(ff)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_dimension_count(hidden // heads)
    writer.add_vocab_size(vocab)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list([bytes([65 + i % 26]) * (1 + i // 26) for i in range(vocab)])
    writer.add_token_types([1] * vocab)
    writer.add_token_scores([0.0] * vocab)
    writer.add_token_merges([])
    writer.add_eos_token_id(1)
    rng = np.random.default_rng(0)

    def weights(*shape):
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    kv = kv_heads * (hidden // heads)
    writer.add_tensor("token_embd.weight", weights(vocab, hidden))
    for name, shape in [("attn_q", (hidden, hidden)), ("attn_k", (kv, hidden)), ("attn_v", (kv, hidden)),
                        ("attn_output", (hidden, hidden)), ("ffn_gate", (ff, hidden)),
                        ("ffn_up", (ff, hidden)), ("ffn_down", (hidden, ff))]:
        writer.add_tensor(f"blk.0.{name}.weight", weights(*shape))
    for name in ("blk.0.attn_norm.weight", "blk.0.ffn_norm.weight", "output_norm.weight"):
        writer.add_tensor(name, np.ones(hidden, np.float32))
    writer.add_tensor("output.weight", weights(vocab, hidden))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
