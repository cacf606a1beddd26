"""BRPO (Writing-Zero): a bootstrapped reference drawn from each group, pairwise GenRM votes,
+1/-1 rewards (reference 0), advantage = reward, skewed groups dropped."""
