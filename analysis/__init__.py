"""analysis: aggregation, worker quality, certification, reports and export.

A library over pandas DataFrames (answers as ``task, worker, label``; gold as a
Series indexed by task, the contract crowd-kit uses); it never imports :mod:`turk`.
"""
