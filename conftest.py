"""Root pytest configuration: loads each area's fixtures from ``tests/fixtures``."""

pytest_plugins = [
    "tests.fixtures.core",
    "tests.fixtures.browser",
    "tests.fixtures.collection",
    "tests.fixtures.retrieval",
    "tests.fixtures.templates",
    "tests.fixtures.sandbox",
    "tests.fixtures.crowd",
    "tests.fixtures.analysis",
    "tests.fixtures.project",
    "tests.fixtures.raycluster",
    "tests.fixtures.turkle",
]
