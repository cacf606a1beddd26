"""Margin-aware data selection: generate, measure the policy's margin, rank the candidates into ladders.

`writing-rl data select` (`writing_rl/cli/select.py`) drives it; docs/data-selection.md describes the method.
"""
