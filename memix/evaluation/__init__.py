"""Scoring LOSO predictions: metrics, epoch-selection rules, one run's evaluation and the comparison report."""
