"""Preference pairs -> verl RL rows for training the GenRM with a verifiable reward.

Every pair gives two rows, one per presentation order: the prompt is the GenRM prompt file's system and user
messages over (prompt, A, B), and the ground truth is the side the human-preferred text is shown on,
`{"preferred": "A" | "B"}`. Both orders of a pair stay in the same split, so validation never sees a pair that
training saw.

The pairs are shuffled (seeded) while each pair's two rows stay adjacent: training runs with `data.shuffle=False`
and an even batch size, so both orders of every pair land in the same step and the `genrm_rl` trainer mode can
log both-order consistency per step, while the steps still see the pairs in a random order.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from writing_rl.data.build import move_stale_test_file, write_rows
from writing_rl.data.preference_pairs import pair_texts
from writing_rl.data.rows import DataError, identified_rows, read_rows
from writing_rl.prompts import PromptTemplate, TemplateError, load_template

GENRM_DATA_SOURCE = "genrm_pairwise"
SIDES = ("A", "B")
SPLITS = ("train", "test")


def load_genrm_template(name_or_path: str | Path) -> PromptTemplate:
    """A prompt file that asks for two scores and needs nothing but the prompt and the two texts."""
    template = load_template(name_or_path, expect_output="scores")
    if template.uses_criteria:
        raise TemplateError(f"{template.path}: uses {{criteria}}, which preference pairs do not have; use a prompt "
                            "file without it (e.g. the built-in genrm)")
    return template


def read_pairs(path: Path) -> list[dict[str, str]]:
    """Pairs `{id, prompt, chosen, rejected}` from our pairs parquet (or JSONL of the same fields; a row without an
    id gets its 0-based position)."""
    rows = read_rows(path)
    if not rows:
        raise DataError(f"{path}: no pairs")

    pairs = []
    first_at: dict[tuple[str, str, str], str] = {}
    for pair_id, where, row in identified_rows(rows, str(path), generated=lambda n: str(n - 1)):
        texts = pair_texts(row, where)
        if texts["chosen"].strip() == texts["rejected"].strip():
            raise DataError(f"{where}: 'chosen' and 'rejected' are the same text, so neither side is "
                            "preferred; remove the pair (`writing-rl data pairs` drops such pairs)")
        key = (texts["prompt"], texts["chosen"], texts["rejected"])
        swapped = (texts["prompt"], texts["rejected"], texts["chosen"])
        for earlier, what in ((key, "repeats"), (swapped, "contradicts (chosen and rejected swapped)")):
            if earlier in first_at:
                raise DataError(f"{where}: {what} {first_at[earlier]}: identical RL prompts would get "
                                f"{'the same' if earlier == key else 'opposite'} ground truth; build the pairs "
                                f"with `writing-rl data pairs {path} --out-dir DIR` (it drops duplicates and "
                                "contradictions) and give DIR here")
        first_at[key] = where
        pairs.append({"id": pair_id, **texts})
    return pairs


def genrm_rl_rows(pair: dict[str, str], template: PromptTemplate, split: str) -> list[dict[str, Any]]:
    """The pair's two rows: the chosen text shown as A, then shown as B."""
    rows = []
    for side in SIDES:
        first, second = (pair["chosen"], pair["rejected"]) if side == "A" else (pair["rejected"], pair["chosen"])
        rows.append({
            "data_source": GENRM_DATA_SOURCE,
            "prompt": template.render(prompt=pair["prompt"], response_a=first, response_b=second),
            "ability": "judging",
            "reward_model": {"style": "rule", "ground_truth": {"preferred": side}},
            "extra_info": {"index": f"{pair['id']}:{side}", "pair_id": pair["id"], "preferred": side,
                           "split": split},
        })
    return rows


def pair_files(input_path: Path) -> dict[str, Path]:
    """Split -> pairs file: a folder written by `writing-rl data pairs` (train.parquet, test.parquet if there is
    one), or one file, which becomes the train split."""
    if not input_path.exists():
        raise DataError(f"{input_path}: not found; give a pairs file or the --out-dir of `writing-rl data pairs`")
    if input_path.is_file():
        return {"train": input_path}
    files = {split: input_path / f"{split}.parquet" for split in SPLITS if (input_path / f"{split}.parquet").is_file()}
    if "train" not in files:
        raise DataError(f"{input_path}: no train.parquet in this folder; run `writing-rl data pairs INPUT --out-dir "
                        f"{input_path}` first")
    return files


def shuffled_pairs(pairs: list[dict[str, str]], seed: int) -> list[dict[str, str]]:
    """The pairs in a random order that the seed fixes (the input is left as it is)."""
    order = list(pairs)
    random.Random(seed).shuffle(order)
    return order


def build_genrm_rl(input_path: Path, out_dir: Path, *, template: str | Path = "genrm", seed: int = 0
                   ) -> tuple[dict[Path, int], Path | None]:
    """Write OUT_DIR/<split>.parquet for each split of the input: each file written with its row count, and where
    an older test.parquet was moved (input without a test split), so validation cannot use stale rows. Pairs are
    shuffled with `seed`, each pair's two orders adjacent."""
    prompt_file = load_genrm_template(template)
    sources = pair_files(input_path)
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError(f"--out-dir {out_dir}: is an existing file; give a folder (it is created if missing)")
    for split, source in sources.items():
        if (out_dir / f"{split}.parquet").resolve() == source.resolve():
            raise DataError(f"{source}: is the input, and would be replaced by the RL rows; choose another --out-dir")
    rows = {split: [row for pair in shuffled_pairs(read_pairs(path), seed)
                    for row in genrm_rl_rows(pair, prompt_file, split)]
            for split, path in sources.items()}
    if "test" in rows:
        train_ids = {r["extra_info"]["pair_id"] for r in rows["train"]}
        shared = sorted(train_ids & {r["extra_info"]["pair_id"] for r in rows["test"]})
        if shared:
            raise DataError(f"{sources['test']}: {len(shared)} pair id(s) are also in {sources['train']}: "
                            f"{shared[:5]}; rebuild the split with `writing-rl data pairs --test-size N`")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"--out-dir {out_dir}: cannot create it ({exc.strerror})") from exc
    written = {}
    for split, split_rows in rows.items():
        write_rows(split_rows, out_dir / f"{split}.parquet")
        written[out_dir / f"{split}.parquet"] = len(split_rows)
    return written, (None if "test" in rows else move_stale_test_file(out_dir))
