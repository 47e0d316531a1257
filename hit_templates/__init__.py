"""hit_templates: Jinja2 HIT templates and instruction sets (package data)."""

from pathlib import Path

__all__ = ["TEMPLATES_DIR"]

TEMPLATES_DIR = Path(__file__).parent
"""Folder holding the packaged templates and instruction sets."""
