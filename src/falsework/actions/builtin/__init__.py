"""Built-in actions, one module per family."""
