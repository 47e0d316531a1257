"""retrieval: collection readers, temporal buckets, CLIP embedding and ranking.

A library over files and arrays; it never imports :mod:`turk`. Long work reports
progress through an optional ``on_progress(n)`` callback (``n`` items just done),
so callers choose how to show it. Nothing here imports torch or open_clip at module
level except the encoder module.
"""
