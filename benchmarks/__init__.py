"""Benchmarks of django-recall-calendar: ``make bench`` (``python -m benchmarks``) prints tables.

Every figure is a ratio against a baseline measured in the same run, never an absolute threshold,
so the numbers mean the same on a laptop and on a CI box. Each benchmark runs in its own process,
against a scratch database it creates and drops.
"""
