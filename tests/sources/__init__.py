"""Tests of the data sources: arrays, iterables, indexable datasets."""
