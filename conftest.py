"""Loads the medbench pytest plugin for every test in this project; nothing else lives here."""

pytest_plugins = ["medbench.plugin"]
