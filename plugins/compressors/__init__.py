"""Builtin compressors (entry point ``builtin_compressors``); none are registered yet."""
