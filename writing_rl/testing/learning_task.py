"""A writing task with a known answer, for showing that training through the judge teaches something.

The texts are short stories in a small template language (sentences such as "the keeper found the silver letter
at night."), written by a tiny Qwen2 pretrained here on such stories: a base model with a real, varied output
distribution (one to six sentences, then end of text) that trains in a minute on a CPU.

The honest judge's hidden quality is a style marker: the share of sentences that are well formed (the template
language's grammar, ending in a full stop) *and* carry a vivid adjective (silver, crimson, ...) rather than a plain
one or none. The base model writes one in about 6 sentences, so rollouts differ and a group has signal, and a
policy can raise the share by choosing words, not by writing more: the share does not grow with length, which keeps
it apart from the exploitable judge, whose quality also counts plain words. Grammar is part of the quality because
a first version without it was won by run-on strings of adjectives ("the silver the crimson the velvet ..."): one
"sentence", always vivid; the judge a policy trains against gets exploited, a toy one included.
A style marker, not "follows the prompt", because a model this small cannot be taught to read a prompt within a
few minutes of RL; the prompts vary but the preference does not depend on them.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

VIVID = ("silver", "crimson", "golden", "velvet", "amber", "misty")
PLAIN = ("big", "small", "nice", "usual", "other", "plain")
SUBJECTS = ("the keeper", "a fox", "the old sailor", "my sister", "the baker", "a child", "the captain",
            "the stranger")
VERBS = ("walked to", "looked at", "waited by", "sang to", "found", "painted", "remembered", "followed")
NOUNS = ("lighthouse", "river", "garden", "letter", "road", "window", "harbour", "forest", "bell", "door")
TAILS = ("", "", " at night", " in the morning", " again", " alone")
ADJECTIVE_CHANCE = 0.35
MAX_SENTENCES = 6

TOPICS = ("a lighthouse", "a lost letter", "the sea", "a winter garden", "an old bell", "a long road", "a river",
          "a closed door", "a harbour town", "a forest path", "a storm", "a bakery", "a stranger", "a window",
          "a fox", "a sailor", "a captain", "a child's drawing", "a song", "a bridge")
FORMS = ("Write a short story about {}.", "Tell a tale of {}.", "Describe {} in a few sentences.",
         "Write a scene about {}.")

_SENTENCE = re.compile(r"[^.!?]+[.!?]?")
_WORD = re.compile(r"[a-z']+")


def _alternatives(words: tuple[str, ...]) -> str:
    return "|".join(re.escape(w) for w in words)


WELL_FORMED = re.compile(rf"(?:{_alternatives(SUBJECTS)}) (?:{_alternatives(VERBS)}) the "
                         rf"(?:(?:{_alternatives(VIVID + PLAIN)}) )?(?:{_alternatives(NOUNS)})"
                         rf"(?:{_alternatives(tuple(t for t in TAILS if t))})?\.")


def sentence(rng: random.Random) -> str:
    adjective = ""
    if rng.random() < ADJECTIVE_CHANCE:
        adjective = rng.choice(VIVID if rng.random() < 0.5 else PLAIN) + " "
    return f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} the {adjective}{rng.choice(NOUNS)}{rng.choice(TAILS)}."


def story(rng: random.Random) -> str:
    return " ".join(sentence(rng) for _ in range(rng.randint(1, MAX_SENTENCES)))


def prompts(count: int, seed: int) -> list[str]:
    """`count` distinct prompts (topic x form), shuffled by `seed`: disjoint seeds' slices make held-out sets."""
    every = [form.format(topic) for topic in TOPICS for form in FORMS]
    random.Random(seed).shuffle(every)
    if count > len(every):
        raise ValueError(f"only {len(every)} distinct prompts exist; asked for {count}")
    return every[:count]


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.findall(text) if _WORD.search(s.lower())]


def vivid_share(text: str) -> float:
    """Share of the text's sentences that are well formed and carry a vivid adjective (0 with no sentence)."""
    found = sentences(text)
    if not found:
        return 0.0
    good = [s for s in found if WELL_FORMED.fullmatch(s.lower()) and any(w in VIVID for w in _WORD.findall(s.lower()))]
    return len(good) / len(found)


LENGTH_CAP_WORDS = 80
"""The exploitable judge pays for length up to this many words (a rollout of 96 tokens holds about 75)."""


def honest_quality(text: str) -> float:
    """1-10, the range GenRM scores take: the judge's hidden preference (the judge server adds noise and position
    bias, and keeps scores within 1-10)."""
    return 1.0 + 9.0 * vivid_share(text)


def exploitable_quality(text: str) -> float:
    """1-10: half the honest quality, half plain length (capped): a judge a policy can win by writing more."""
    length = min(len(text.split()), LENGTH_CAP_WORDS) / LENGTH_CAP_WORDS
    return 1.0 + 9.0 * (0.5 * vivid_share(text) + 0.5 * length)


QUALITIES = {"honest": honest_quality, "exploitable": exploitable_quality}


# ---------------------------------------------------------------------------------------------- the base model
@dataclass(frozen=True)
class Pretraining:
    stories: int = 4000
    steps: int = 600
    batch_size: int = 32
    learning_rate: float = 3e-3
    seed: int = 0


def _examples(tokenizer: object, count: int, seed: int) -> Iterator[tuple[list[int], int]]:
    """(token ids, prompt length) of chat-formatted (prompt, story) pairs; the loss skips the prompt."""
    rng = random.Random(seed)
    every = prompts(len(TOPICS) * len(FORMS), seed)
    for _ in range(count):
        prompt = tokenizer.apply_chat_template([{"role": "user", "content": rng.choice(every)}],  # type: ignore[attr-defined]
                                               add_generation_prompt=True, tokenize=False)
        head = tokenizer.encode(prompt)  # type: ignore[attr-defined]
        body = [*tokenizer.encode(story(rng)), tokenizer.eos_token_id]  # type: ignore[attr-defined]
        yield head + body, len(head)


def pretrain_base_model(target: Path, plan: Pretraining = Pretraining(), progress: bool = True) -> Path:
    """A tiny Qwen2 (`writing_rl.models.tiny`) trained on template stories; written to `target` (a HF folder).
    Reused when `target` already holds one."""
    import torch
    from tqdm import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from writing_rl.models.tiny import write_tiny_model

    if (target / "pretrained.txt").is_file():
        return target
    write_tiny_model(target, seed=plan.seed)
    tokenizer = AutoTokenizer.from_pretrained(target)
    model = AutoModelForCausalLM.from_pretrained(target, torch_dtype=torch.float32)
    examples = list(_examples(tokenizer, plan.stories, plan.seed))
    optimizer = torch.optim.AdamW(model.parameters(), lr=plan.learning_rate, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=plan.learning_rate, total_steps=plan.steps)
    rng = random.Random(plan.seed)
    model.train()
    with tqdm(range(plan.steps), desc="pretraining the base model", disable=not progress) as bar:
        for _ in bar:
            batch = rng.sample(examples, plan.batch_size)
            loss = _batch_loss(model, batch, tokenizer.pad_token_id)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            bar.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()
    model.save_pretrained(target)
    (target / "pretrained.txt").write_text(f"{plan}\nfinal loss {loss.item():.4f}\n")
    return target


def _batch_loss(model: object, batch: Sequence[tuple[list[int], int]], pad: int) -> object:
    import torch

    width = max(len(ids) for ids, _ in batch)
    input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, (ids, head) in enumerate(batch):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, head: len(ids)] = torch.tensor(ids[head:])
        mask[row, : len(ids)] = 1
    return model(input_ids=input_ids, attention_mask=mask, labels=labels).loss  # type: ignore[operator]


def sample_texts(model_dir: Path, prompt_texts: Sequence[str], samples: int, *, max_new_tokens: int,
                 temperature: float = 1.0, seed: int = 0, weights: dict[str, object] | None = None
                 ) -> list[list[str]]:
    """`samples` texts per prompt from the model in `model_dir` (with `weights` loaded over it, e.g. a trained
    actor's), sampled as the rollout samples them (the CPU rollout's own batched sampler)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from writing_rl.cpu.generation import GenerationRequest, generate_batch

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32).eval()
    if weights is not None:
        model.load_state_dict(weights, strict=False)
    generator = torch.Generator().manual_seed(seed)
    requests = []
    for text in prompt_texts:
        prompt = tokenizer.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True,
                                               tokenize=False)
        requests += [GenerationRequest(prompt_ids=tokenizer.encode(prompt), max_tokens=max_new_tokens,
                                       temperature=temperature) for _ in range(samples)]
    outputs = []
    for start in range(0, len(requests), 64):
        outputs += generate_batch(model, requests[start:start + 64], {tokenizer.eos_token_id},
                                  tokenizer.pad_token_id, generator)
    texts = [tokenizer.decode(o.token_ids, skip_special_tokens=True).strip() for o in outputs]
    return [texts[i * samples:(i + 1) * samples] for i in range(len(prompt_texts))]
