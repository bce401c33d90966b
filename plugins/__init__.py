"""The builtin plugins, installed as ``harness_plugins``: one package per kind, one subpackage per component."""
