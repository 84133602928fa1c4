"""Benchmarks: each writes JSON under bench/results/ and is quoted in the README."""
