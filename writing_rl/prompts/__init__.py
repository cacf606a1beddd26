"""Judge prompt files shipped with writing-rl (`*.toml` beside this file) and their loader."""

from writing_rl.prompts.template import PromptTemplate, TemplateError, load_template

__all__ = ["PromptTemplate", "TemplateError", "load_template"]
