"""The `writing-rl` command: one module per command group; `main` is the entry point."""

from writing_rl.cli.main import main

__all__ = ["main"]
