"""Built-in plugins. Each is registered through the ``gateway.plugins`` entry points,
exactly like a third-party plugin, and never imports another plugin."""
