"""Policy evaluation: the policy's responses against a baseline's, judged in both orders, with error bars,
a length-controlled win rate, per-criterion scores and a self-contained HTML report."""
