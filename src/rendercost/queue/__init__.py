"""Durable jobs: the JobStore protocol and its SQL implementation."""
