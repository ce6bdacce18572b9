"""Loads the medbench pytest plugin for every test in this project; nothing else lives here.

Installed, medbench registers the plugin through its `pytest11` entry point, named after the
module (`medbench.plugin`): pytest then finds it registered and this line loads nothing twice.
It stays for runs where entry points are not loaded (PYTEST_DISABLE_PLUGIN_AUTOLOAD=1).
"""

pytest_plugins = ["medbench.plugin"]
