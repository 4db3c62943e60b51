"""Experiment: fewer garbage-collector runs (gen0 threshold 700 -> 100,000)."""
import gc

gc.set_threshold(100_000, 50, 100)
