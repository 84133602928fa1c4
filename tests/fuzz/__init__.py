"""Fuzzing: hypothesis over the sandbox server's requests and over tool source."""
