"""Foundations every other package may use: ``settings`` (the frozen configuration, read once at the edge),
``auth`` (signed access tokens and the secret behind them: the one place for credentials), ``logsafe`` (tokens
kept out of logs). Imports nothing from the rest of ``service``."""
