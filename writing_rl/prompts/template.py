"""Judge prompt files: load, validate at start-up, render.

A prompt file is TOML (UTF-8) with `output` ("verdict" or "scores" for two responses, "score" for one
response against one criterion), `system`, `user` and an
optional `grammar` (GBNF, for servers that can constrain output; its syntax is checked on load).
Placeholders are `{name}`; any other brace text (e.g. `\\boxed{score_a, score_b}` or
`{"winner": "A"}`) is left alone, and a response that itself contains `{prompt}` is never
substituted twice. To write a literal `{word}`, double the braces: `{{word}}` renders as `{word}`
(`{{` is always `{` and `}}` always `}`). Every problem names the file and what to fix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import tomllib

from writing_rl.prompts.grammar import GrammarError, check_gbnf
from writing_rl.text_files import read_user_text

BUILTIN_DIR = Path(__file__).resolve().parent
PLACEHOLDERS = frozenset({"prompt", "response_a", "response_b", "criteria"})
REQUIRED = ("prompt", "response_a", "response_b")
SCORE_PLACEHOLDERS = frozenset({"prompt", "response", "criteria"})
"""A `score` file rates one `{response}` against one criterion; all three placeholders are required."""
OUTPUT_MARKERS = {
    "verdict": ("[[A]]", "[[B]]", "[[C]]"),
    "scores": ("\\boxed{",),
    "score": ("\\boxed{",),
}
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")
"""A doubled brace (an escaped literal one) or a placeholder, matched left to right in one pass."""
_UNESCAPED = {"{{": "{", "}}": "}"}


class TemplateError(ValueError):
    """A prompt file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    path: Path
    output: str
    system: str
    user: str
    grammar: str | None

    @cached_property
    def placeholders(self) -> frozenset[str]:
        return frozenset(part for text in (self.system, self.user) for part in _parts(text)
                         if isinstance(part, Placeholder))

    @property
    def uses_criteria(self) -> bool:
        return "criteria" in self.placeholders

    @cached_property
    def _compiled(self) -> tuple[tuple[str | Placeholder, ...], tuple[str | Placeholder, ...] | None]:
        """The user text and the system text (None when blank), split once into literals and placeholders:
        rendering then joins strings instead of running the pattern over the whole file for every judgement."""
        return _parts(self.user), _parts(self.system) if self.system.strip() else None

    def render(self, **values: str) -> list[dict[str, str]]:
        """Chat messages with every placeholder filled; a missing value is an error, not a blank."""
        missing = sorted(self.placeholders - {k for k, v in values.items() if v is not None})
        if missing:
            raise TemplateError(f"{self.path}: no value given for placeholder(s) {missing}")

        def fill(parts: tuple[str | Placeholder, ...]) -> str:
            return "".join(str(values[part]) if isinstance(part, Placeholder) else part for part in parts)

        user, system = self._compiled
        messages = [{"role": "system", "content": fill(system)}] if system is not None else []
        messages.append({"role": "user", "content": fill(user)})
        return messages


class Placeholder(str):
    """A `{name}` in a prompt file, as opposed to literal text."""


def _parts(text: str) -> tuple[str | Placeholder, ...]:
    """Literal text (doubled braces already undoubled) and placeholders, in order, in one left-to-right pass."""
    parts: list[str | Placeholder] = []
    position = 0
    for match in _PLACEHOLDER.finditer(text):
        parts.append(text[position:match.start()])
        parts.append(Placeholder(match.group(1)) if match.group(1) else _UNESCAPED[match.group(0)])
        position = match.end()
    parts.append(text[position:])
    return tuple(part for part in parts if part)


def resolve_template_path(name_or_path: str | Path) -> Path:
    """A built-in name (`pairwise`, `pairwise_criteria`, `genrm`) or a path to a .toml file."""
    candidate = Path(name_or_path)
    if candidate.is_dir():
        raise TemplateError(f"{candidate}: is a directory; give a .toml prompt file or a built-in name")
    if candidate.suffix == ".toml" or candidate.exists():
        return candidate
    builtin = BUILTIN_DIR / f"{name_or_path}.toml"
    if builtin.exists():
        return builtin
    names = sorted(p.stem for p in BUILTIN_DIR.glob("*.toml"))
    raise TemplateError(f"prompt template {str(name_or_path)!r}: no such file and no built-in of that "
                        f"name; built-ins are {names}")


def load_template(name_or_path: str | Path, *, expect_output: str | None = None) -> PromptTemplate:
    path = resolve_template_path(name_or_path)
    try:
        data = tomllib.loads(read_user_text(path, TemplateError))
    except tomllib.TOMLDecodeError as exc:
        raise TemplateError(f"{path}: not valid TOML ({exc})") from exc
    return validate_template(data, path, expect_output=expect_output)


def validate_template(data: Mapping[str, object], path: Path, *,
                      expect_output: str | None = None) -> PromptTemplate:
    unknown_keys = sorted(set(data) - {"output", "system", "user", "grammar"})
    if unknown_keys:
        raise TemplateError(f"{path}: unknown key(s) {unknown_keys}; allowed: output, system, user, grammar")
    for key in ("output", "user"):
        if not isinstance(data.get(key), str) or not str(data[key]).strip():
            raise TemplateError(f"{path}: missing or empty `{key}`")
    output = str(data["output"])
    if output not in OUTPUT_MARKERS:
        raise TemplateError(f"{path}: output = {output!r}; must be one of {sorted(OUTPUT_MARKERS)}")
    if expect_output is not None and output != expect_output:
        raise TemplateError(f"{path}: declares output = {output!r} but this use needs {expect_output!r}")
    system = data.get("system", "")
    grammar = data.get("grammar")
    if not isinstance(system, str) or (grammar is not None and not isinstance(grammar, str)):
        raise TemplateError(f"{path}: `system` and `grammar` must be strings")
    if grammar is not None:
        try:
            check_gbnf(grammar)
        except GrammarError as exc:
            raise TemplateError(f"{path}: `grammar` is not valid GBNF: {exc}; llama.cpp would refuse every "
                                "request with it") from exc
    template = PromptTemplate(name=path.stem, path=path, output=output, system=system,
                              user=str(data["user"]), grammar=grammar.strip() if grammar else None)
    allowed, required = (SCORE_PLACEHOLDERS, sorted(SCORE_PLACEHOLDERS)) if output == "score" else (PLACEHOLDERS,
                                                                                                      REQUIRED)
    unknown = sorted(template.placeholders - allowed)
    if unknown:
        raise TemplateError(f"{path}: unknown placeholder(s) {['{' + u + '}' for u in unknown]}; "
                            f"allowed: {sorted('{' + p + '}' for p in allowed)}")
    missing = [p for p in required if p not in template.placeholders]
    if missing:
        raise TemplateError(f"{path}: missing placeholder(s) {['{' + m + '}' for m in missing]}")
    absent = [m for m in OUTPUT_MARKERS[output] if m not in template.system + template.user]
    if absent:
        raise TemplateError(f"{path}: output = {output!r} but the prompt never tells the judge to write "
                            f"{absent}; describe the expected output format in `user` or `system`")
    return template
