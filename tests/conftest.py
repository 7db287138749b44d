"""Shared fixtures live in tests/fixtures/, one module per owner, loaded as plugins."""

pytest_plugins = [
    "tests.fixtures.models",
    "tests.fixtures.databases",
    "tests.fixtures.llm",
    "tests.fixtures.redis",
    "tests.fixtures.s3",
    "tests.fixtures.single_file",
]
